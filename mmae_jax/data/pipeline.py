"""The input pipeline: tf.data per host, global ``jax.Array`` batches per step.

Clips leave the host as uint8 pixel values ``[B, T, S, S, 3]`` (``transform.clip_fn``);
the steps turn them into the normalised float input on the device. The iterators keep the
next global batch(es) already on the devices (``sharding.prefetch_to_device``).

Training stream of host p: epoch e is this host's train examples shuffled with a seed drawn
from (seed, p, e); epochs follow each other without a gap, and element k of the stream is
augmented with a seed drawn from (seed, p, k). Nothing depends on earlier elements, so a
run resumed at step s starts directly at epoch ``s * L // N_p`` and skips the rest of it
(L: host batch, N_p: host train examples), yielding the batches an uninterrupted run
yields from step s on.

Evaluation: every host runs the same number of batches, ``ceil(max_p N_p / L)``; the tail
is padded with zero clips whose ``mask`` is False, so every example is counted once.
"""

from __future__ import annotations

import math
from typing import Iterator

import jax
import ml_collections
import tensorflow as tf
from jax.sharding import NamedSharding

from mmae_jax.data import clip_layout
from mmae_jax.data.integrity import finite_windows
from mmae_jax.data.sharding import host_batch_size, place_batches
from mmae_jax.data.source import SplitFn, StoredDataset, open_dataset
from mmae_jax.data.transform import Decoder, clip_fn

_ENDLESS = 2**62


def _seed(*values) -> tf.Tensor:
    """A ``[2]`` stateless seed folded from ints / int tensors."""
    seed = tf.constant([0, values[0]], tf.int64)
    for value in values[1:]:
        seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(value, tf.int64))
    return seed


def _scalar_seed(*values) -> tf.Tensor:
    """An int64 scalar seed (for tf.data ops) drawn from ``_seed(*values)``."""
    return tf.random.stateless_uniform([], _seed(*values), minval=None, maxval=None,
                                       dtype=tf.int64)


def _parallel(cfg: ml_collections.ConfigDict) -> int:
    return tf.data.AUTOTUNE if cfg.num_parallel_calls < 0 else cfg.num_parallel_calls


def _to_example(source: StoredDataset, cfg: ml_collections.ConfigDict, *, train: bool):
    """The map function: (stream position, (global index, encoded example)) -> model input.

    The clip's chain of ops (``transform.clip_fn``) is built and its config checked here,
    once; the function tf.data traces gives the clip its seeds and runs the chain. It is traced as written: the
    chain holds no Python control flow on tensors (branches are on config values or explicit
    tf.cond), and AutoGraph's conversion would cost seconds of CPU per process and change
    nothing."""
    decoder = Decoder(source.decode_faces, lambda example: finite_windows(source.decode_windows(example),
                                                                          example["clip_id"]))
    clip = clip_fn(cfg, decoder, train=train)
    per_clip_order = cfg.rfas_order == "per_clip"

    @tf.autograph.experimental.do_not_convert
    def convert(position, indexed):
        index, example = indexed
        example = {**example, "seed": _seed(cfg.seed, position)}
        if per_clip_order:
            example["order_seed"] = clip_layout.clip_order_seed(cfg.seed, example["clip_id"])
        return {"video": clip(example)["video"], "label": tf.cast(example["label"], tf.int32),
                "index": tf.cast(index, tf.int32)}
    return convert


def train_dataset(cfg: ml_collections.ConfigDict, *, local_batch_size: int, process_index: int,
                  process_count: int, start_step: int = 0, split_fn: SplitFn | None = None
                  ) -> tf.data.Dataset:
    """Endless host batches ``{"video": [L, T, S, S, 3] uint8, "label": [L] int32}``."""
    source = open_dataset(cfg, split_fn)
    records = source.host_records("train", process_index, process_count)
    per_epoch = source.host_count("train", process_index, process_count)
    if per_epoch == 0:
        raise ValueError(f"process {process_index} of {process_count} has no training examples "
                         f"in {source.builder.data_dir} (train split: "
                         f"{source.num_examples('train')} examples)")
    first_epoch, skip = divmod(start_step * local_batch_size, per_epoch)
    buffer = max(1, min(cfg.shuffle_buffer, per_epoch))

    def epoch(number):
        shuffle_seed = _scalar_seed(cfg.seed, process_index, number)
        shuffled = records.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=False)
        return shuffled.enumerate().map(lambda i, x: (number * per_epoch + i, x))

    stream = tf.data.Dataset.range(first_epoch, _ENDLESS).flat_map(epoch).skip(skip)
    convert = _to_example(source, cfg, train=True)

    def per_host(position, indexed):
        return convert(position * process_count + process_index, indexed)

    examples = stream.map(per_host, num_parallel_calls=_parallel(cfg), deterministic=True)
    examples = examples.map(lambda x: {"video": x["video"], "label": x["label"]})
    return examples.batch(local_batch_size, drop_remainder=True).prefetch(cfg.prefetch)


def eval_dataset(cfg: ml_collections.ConfigDict, split: str, *, local_batch_size: int,
                 process_index: int, process_count: int, split_fn: SplitFn | None = None
                 ) -> tuple[tf.data.Dataset, int]:
    """Finite host batches of ``split`` and their number (the same on every host).

    Batches: ``{"video": [L, T, S, S, 3] uint8, "label": [L] int32, "mask": [L] bool,
    "index": [L] int32}``; ``index`` is the example's global index (-1 for padding).
    """
    source = open_dataset(cfg, split_fn)
    largest = max(source.host_count(split, p, process_count) for p in range(process_count))
    num_batches = math.ceil(largest / local_batch_size)   # 0 for an empty split
    records = source.host_records(split, process_index, process_count)
    convert = _to_example(source, cfg, train=False)
    # The rfas order and any randomness of an evaluated clip follow its global index.
    examples = records.map(
        lambda index, example: {**convert(index, (index, example)), "mask": True},
        num_parallel_calls=_parallel(cfg), deterministic=True)
    blank = tf.nest.map_structure(lambda spec: tf.zeros(spec.shape, spec.dtype),
                                  examples.element_spec)
    padding = tf.data.Dataset.from_tensors({**blank, "index": tf.constant(-1, tf.int32)}).repeat()
    padded = examples.concatenate(padding).take(num_batches * local_batch_size)
    return padded.batch(local_batch_size, drop_remainder=True).prefetch(cfg.prefetch), num_batches


def make_train_iterator(data_cfg: ml_collections.ConfigDict, *, global_batch_size: int,
                        sharding: NamedSharding, start_step: int = 0,
                        split_fn: SplitFn | None = None, device_prefetch: int = 2) -> Iterator[dict]:
    """Endless global batches ``{"video": [B, T, S, S, 3] uint8, "label": [B] int32}``.

    Each process reads its own part of the train split; arrays are placed with ``sharding``'s
    batch axes, ``device_prefetch`` batches ahead of the consumer (0: placed when asked for).
    ``start_step=s`` continues exactly where an uninterrupted run was at step s.
    """
    local = host_batch_size(global_batch_size, sharding)
    dataset = train_dataset(data_cfg, local_batch_size=local, process_index=jax.process_index(),
                            process_count=jax.process_count(), start_step=start_step,
                            split_fn=split_fn)
    yield from place_batches(dataset, sharding, device_prefetch)


def make_eval_iterator(data_cfg: ml_collections.ConfigDict, split: str, *,
                       global_batch_size: int, sharding: NamedSharding,
                       split_fn: SplitFn | None = None, device_prefetch: int = 2) -> Iterator[dict]:
    """Global batches of ``split`` reading every example exactly once over all hosts.

    Yields ``{"video", "label", "mask": [B] bool, "index": [B] int32}``; padded clips have
    mask False and index -1. ``index`` maps to ``open_dataset(data_cfg).clip_ids``.
    ``device_prefetch`` as for ``make_train_iterator``.
    """
    local = host_batch_size(global_batch_size, sharding)
    dataset, _ = eval_dataset(data_cfg, split, local_batch_size=local,
                              process_index=jax.process_index(),
                              process_count=jax.process_count(), split_fn=split_fn)
    yield from place_batches(dataset, sharding, device_prefetch)
