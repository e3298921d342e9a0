"""Damaged stored data, found and named: the shard files of a build, and non-finite spectrograms.

TensorFlow reports a damaged TFRecord shard without its file name (``DataLossError: corrupted
record at 354067``, or ``FailedPreconditionError: ... expected to contain 48 elements but
contained only 25`` for a shard cut at a record boundary). ``reading_errors(data_cfg)`` turns
those errors, raised anywhere inside it, into one InputError that names each damaged file of
the build (``damaged_shards``: every record's checksum read, every shard's record count
compared with ``dataset_info.json``) and the command that rebuilds it.

``finite_windows`` makes the input pipeline stop at a stored spectrogram holding NaN or
infinite values, naming the clip (the spectrogram renderer would otherwise turn a NaN into
the pixel index -2147483648, reported by TensorFlow without a clip).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import ml_collections
import tensorflow as tf

from mmae_jax.errors import InputError

NON_FINITE_MARK = "non-finite stored spectrogram values in clip"


def finite_windows(windows: tf.Tensor, clip_id: tf.Tensor) -> tf.Tensor:
    """``windows`` unchanged; iterating the dataset fails (InvalidArgumentError carrying
    ``NON_FINITE_MARK`` and the clip id) when any value is NaN or infinite."""
    check = tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(windows)), [NON_FINITE_MARK, clip_id])
    with tf.control_dependencies([check]):
        return tf.identity(windows)


def damaged_shards(builder_dir: str | Path) -> list[tuple[Path, str]]:
    """``(file, what is wrong)`` of every shard of the build in ``builder_dir`` that is
    missing, unreadable (a checksum or length error) or holds fewer or more records than its
    ``dataset_info.json`` says."""
    import tensorflow_datasets as tfds

    damaged = []
    info = tfds.builder_from_directory(str(builder_dir)).info
    for split in info.splits.values():
        for path, expected in zip(split.filepaths, split.shard_lengths):
            path = Path(str(path))
            if not path.exists():
                damaged.append((path, "missing"))
                continue
            count = 0
            try:
                for _ in tf.data.TFRecordDataset(str(path)):
                    count += 1
            except tf.errors.OpError as error:
                damaged.append((path, f"unreadable after {count} of {expected} records ({_short(error)})"))
                continue
            if count != expected:
                damaged.append((path, f"{count} records where dataset_info.json says {expected}"))
    return damaged


def _short(error: tf.errors.OpError) -> str:
    """TensorFlow's message without its ``{{function_node ...}}`` prefix and op suffix."""
    text = error.message.split("}}")[-1].split("[Op:")[0].strip()
    return text.rstrip(".'") or type(error).__name__


@contextlib.contextmanager
def reading_errors(data_cfg: ml_collections.ConfigDict) -> Iterator[None]:
    """Inside: TensorFlow's errors of damaged stored data become one InputError naming the
    damaged files (or the clip with non-finite values) and how to rebuild."""
    try:
        yield
    except (tf.errors.DataLossError, tf.errors.FailedPreconditionError, tf.errors.InvalidArgumentError,
            tf.errors.NotFoundError, tf.errors.PermissionDeniedError) as error:   # damaged, missing, unreadable
        translated = stored_data_error(data_cfg, error)
        if translated is None:
            raise
        raise translated from error


def stored_data_error(data_cfg: ml_collections.ConfigDict, error: tf.errors.OpError) -> InputError | None:
    """The InputError for ``error`` raised while reading ``data_cfg``'s build, or None when
    ``error`` is not about damaged stored data."""
    from mmae_jax.data.source import _prepare_command, stored_builder_dir

    builder_dir = stored_builder_dir(data_cfg.data_dir, data_cfg.dataset, data_cfg.builder_config)
    rebuild = _prepare_command(data_cfg.dataset, data_cfg.builder_config, Path(data_cfg.data_dir or "."))
    fix = f"rebuild it with `{rebuild} --rebuild`"
    if isinstance(error, tf.errors.InvalidArgumentError):
        if NON_FINITE_MARK not in error.message:
            return None
        clip = error.message.split(NON_FINITE_MARK, 1)[1].split("\n")[0].strip(" []'\"")
        return InputError(f"the stored spectrogram of clip {clip} in {builder_dir} holds NaN or infinite values",
                          fix)
    damaged = damaged_shards(builder_dir)
    if not damaged:
        return InputError(f"reading {builder_dir} failed ({_short(error)}) but every shard reads back whole",
                          f"check the disk, or {fix}")
    files = "; ".join(f"{path}: {what}" for path, what in damaged)
    return InputError(f"the stored dataset {builder_dir} is damaged ({files})", fix)
