"""Split membership files: exactly which stored clips each fold's train / validation / test holds.

``write_split_files(data_cfg, out_dir)`` writes, for the config's protocol::

    out_dir/protocol.json                    dataset, build, protocol, seed, folds
    out_dir/[fold_<k>/]train.csv             clip_id,label,label_name,speaker,example_sha256
    out_dir/[fold_<k>/]validation.csv        (one fold_<k>/ folder per fold of kfold / hicmae)
    out_dir/[fold_<k>/]test.csv
    out_dir/SHA256SUMS                       ``sha256sum -c`` format, every file above

Rows are sorted by clip id, so the files depend only on the stored data and the protocol.
``example_sha256`` hashes every stored feature of the example (encoded faces and
spectrogram, label, speaker, clip id). The run's split hash is the sha256 of ``SHA256SUMS``.
A clip of an overlapping protocol (``notebook``) is listed in both train and validation.

``data.split_dir`` names such a folder (without ``fold_<k>/``) for the pipeline to read instead
of drawing the protocol's split (``source.read_split_names``): e.g. the notebook's own split, recovered
from its archive by ``mmae_jax.data.notebook_archive``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from pathlib import Path

import ml_collections
import numpy as np
import tensorflow_datasets as tfds

from mmae_jax.data_prep import protocols
from mmae_jax.data_prep.protocols import SPLITS, check_class_set, split_membership
from mmae_jax.data.source import _READ_CONFIG, load_builder, protocol_split_fn
from mmae_jax.errors import InputError

COLUMNS = ("clip_id", "label", "label_name", "speaker", "example_sha256")
SUMS_FILE = "SHA256SUMS"


def _feature_bytes(value) -> bytes:
    """Bytes of one (possibly nested, possibly still encoded) feature value."""
    if isinstance(value, dict):
        return b"".join(key.encode() + _feature_bytes(value[key]) for key in sorted(value))
    array = np.asarray(value)
    if array.dtype == object:
        return b"".join(bytes(item) for item in array.reshape(-1))
    return str(array.dtype).encode() + str(array.shape).encode() + array.tobytes()


def stored_examples(data_cfg: ml_collections.ConfigDict) -> tuple[dict, list[str]]:
    """Every stored example's clip id, label, speaker and content hash, in stored order.

    Returns ``({"clip_id": [N], "label": [N], "speaker": [N], "example_sha256": [N]}, class_names)``.
    """
    builder = load_builder(data_cfg)
    encoded = {name: tfds.decode.SkipDecoding() for name in ("faces", "spectrogram")
               if name in builder.info.features}
    records = builder.as_dataset(split=data_cfg.stored_split, shuffle_files=False,
                                 read_config=tfds.ReadConfig(**_READ_CONFIG), decoders=encoded)
    table = {"clip_id": [], "label": [], "speaker": [], "example_sha256": []}
    for example in records.as_numpy_iterator():
        table["clip_id"].append(example["clip_id"].decode())
        table["label"].append(int(example["label"]))
        table["speaker"].append(int(example["speaker"]))
        table["example_sha256"].append(hashlib.sha256(_feature_bytes(example)).hexdigest())
    return table, list(builder.info.features["label"].names)


def protocol_folds(data_cfg: ml_collections.ConfigDict) -> list[int] | None:
    """Every fold of a fold protocol (kfold, hicmae); None for a protocol without folds."""
    if data_cfg.protocol in protocols.FOLD_PROTOCOLS:
        return list(range(protocols.num_folds(data_cfg.dataset)))
    return None


def split_tables(data_cfg: ml_collections.ConfigDict, folds: list[int] | None = None) -> dict[str, str]:
    """Relative path -> file text of every split file (``SHA256SUMS`` included).

    ``folds`` (of a fold protocol) defaults to all of them.
    """
    table, class_names = stored_examples(data_cfg)
    check_class_set(data_cfg.dataset, data_cfg.protocol, class_names)
    if folds is None:
        folds = protocol_folds(data_cfg)
    files = {"protocol.json": json.dumps(
        {"dataset": data_cfg.dataset, "builder_config": data_cfg.builder_config,
         "protocol": data_cfg.protocol, "split_seed": data_cfg.split_seed, "folds": folds,
         "columns": list(COLUMNS), "examples": len(table["clip_id"])}, indent=2, sort_keys=True) + "\n"}
    for fold in (folds if folds is not None else [None]):
        fold_cfg = ml_collections.ConfigDict(dict(dataset=data_cfg.dataset, protocol=data_cfg.protocol,
                                                  fold=fold or 0, split_seed=data_cfg.split_seed,
                                                  split_dir=data_cfg.get("split_dir", "")))
        names = protocol_split_fn(fold_cfg, table["label"])(table["clip_id"], table["speaker"])
        files.update(membership_tables(table, class_names, names, "" if fold is None else f"fold_{fold}/"))
    return with_sums(files)


def membership_tables(table: dict, class_names: list[str], names, prefix: str = "") -> dict[str, str]:
    """``{prefix}train.csv`` ... ``{prefix}test.csv`` texts of the clips of ``table`` (as
    ``stored_examples`` gives it) by their split names ``names`` (``split_membership``), sorted by clip id."""
    order = np.argsort(np.asarray(table["clip_id"], dtype=object), kind="stable")
    files = {}
    for split in SPLITS:
        member = split_membership(names, split)
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(COLUMNS)
        for index in order:
            if member[index]:
                writer.writerow([table["clip_id"][index], table["label"][index],
                                 class_names[table["label"][index]], table["speaker"][index],
                                 table["example_sha256"][index]])
        files[f"{prefix}{split}.csv"] = text.getvalue()
    return files


def with_sums(files: dict[str, str]) -> dict[str, str]:
    """``files`` plus their ``SHA256SUMS``."""
    return {**files, SUMS_FILE: "".join(f"{hashlib.sha256(text.encode()).hexdigest()}  {path}\n"
                                        for path, text in sorted(files.items()))}


def splits_sha256(files: dict[str, str]) -> str:
    """The hash naming a set of split files: sha256 of their ``SHA256SUMS``."""
    return hashlib.sha256(files[SUMS_FILE].encode()).hexdigest()


def write_split_files(data_cfg: ml_collections.ConfigDict, out_dir: str | Path,
                      folds: list[int] | None = None) -> str:
    """Write the split files of ``data_cfg``'s protocol as the folder ``out_dir``; returns their hash.

    An ``out_dir`` holding earlier split files is replaced whole (no ``fold_<k>`` folder of
    another protocol is left beside the new files): the files are written to a folder beside
    it, which then takes its place. A non-empty ``out_dir`` holding anything else is refused.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / SUMS_FILE).is_file())):
        raise InputError(f"{out_dir} exists and holds no split files ({SUMS_FILE}), so it is not replaced",
                         "choose a new or empty folder")
    files = split_tables(data_cfg, folds)
    staging = out_dir.with_name(f".{out_dir.name}.writing")
    shutil.rmtree(staging, ignore_errors=True)
    for relative, text in files.items():
        path = staging / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if out_dir.exists():
        replaced = out_dir.with_name(f".{out_dir.name}.replaced")
        shutil.rmtree(replaced, ignore_errors=True)
        out_dir.rename(replaced)
        staging.rename(out_dir)
        shutil.rmtree(replaced)
    else:
        staging.rename(out_dir)
    return splits_sha256(files)
