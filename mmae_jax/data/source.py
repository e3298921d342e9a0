"""The stored dataset: opening it, its example metadata, which clips belong to train /
validation / test, and each host's part of a split.

Each dataset is stored once, in one TFDS split; the protocol (a seeded random split, the
notebook's class-stratified split or speaker-independent folds) is applied here, at load
time. A ``SplitFn`` maps the clip ids and speakers of all stored examples to split names;
``protocol_split_fn`` is the one place that connects the pipeline to ``mmae_jax.data_prep.protocols``.

Examples are addressed by their *global index*: their position in the stored split read in
file order. Every host computes the same metadata (clip id, speaker, assigned split of every
example), so per-host counts are known everywhere without communication. Host p reads only
the contiguous slice ``[p * N // P, (p + 1) * N // P)`` of the stored split and keeps the
examples of the wanted split (TFDS shuffles examples when it writes, so splits spread
evenly over the slices).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
from pathlib import Path
from typing import Callable, Sequence

import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from mmae_jax.data_prep import protocols
from mmae_jax.data_prep.protocols import SPLITS, check_class_set, split_membership
from mmae_jax.data_prep.registry import built_versions
from mmae_jax.config.names import notice, old_names
from mmae_jax.errors import InputError

SplitFn = Callable[[Sequence[str], Sequence[int]], Sequence[str]]

# Sequential file reading keeps the global index of an example the same in every slice.
_READ_CONFIG = dict(interleave_cycle_length=1, shuffle_seed=None)
_ENCODED_FEATURES = ("faces", "spectrogram")


@dataclasses.dataclass(frozen=True)
class StoredDataset:
    """A stored dataset with the split assignment of one protocol.

    Attributes:
      builder: the TFDS builder reading the stored files.
      stored_split: the TFDS split holding every example (``data``).
      clip_ids: ``[N]`` clip id of each example, by global index.
      speakers: ``[N]`` int speaker id of each example.
      split_names: ``[N]`` split ('train' | 'validation' | 'test' | 'train+validation' (in both)
        | other) of each example.
    """

    builder: tfds.core.DatasetBuilder
    stored_split: str
    clip_ids: np.ndarray
    speakers: np.ndarray
    split_names: np.ndarray

    @property
    def class_names(self) -> list[str]:
        return list(self.builder.info.features["label"].names)

    @property
    def features(self) -> tfds.features.FeaturesDict:
        return self.builder.info.features

    def indices(self, split: str) -> np.ndarray:
        """Sorted global indices of the examples of ``split``."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
        return np.flatnonzero(split_membership(self.split_names, split))

    def num_examples(self, split: str) -> int:
        return int(self.indices(split).size)

    def host_slice(self, process_index: int, process_count: int) -> tuple[int, int]:
        """``[start, end)`` global indices read by host ``process_index``."""
        total = len(self.clip_ids)
        return process_index * total // process_count, (process_index + 1) * total // process_count

    def host_count(self, split: str, process_index: int, process_count: int) -> int:
        """Examples of ``split`` inside host ``process_index``'s slice."""
        start, end = self.host_slice(process_index, process_count)
        indices = self.indices(split)
        return int(np.count_nonzero((indices >= start) & (indices < end)))

    def host_records(self, split: str, process_index: int, process_count: int) -> tf.data.Dataset:
        """This host's examples of ``split``, still encoded, in global order.

        Elements are ``(global_index, example)``; decode ``faces`` and ``spectrogram`` with
        ``decode_faces`` / ``decode_windows``.
        """
        start, end = self.host_slice(process_index, process_count)
        member = tf.constant(split_membership(self.split_names, split))
        records = self.builder.as_dataset(
            split=f"{self.stored_split}[{start}:{end}]", shuffle_files=False,
            read_config=tfds.ReadConfig(**_READ_CONFIG),
            decoders={name: tfds.decode.SkipDecoding() for name in _ENCODED_FEATURES})
        indexed = records.enumerate(start=start)
        return indexed.filter(lambda index, _: tf.gather(member, index))

    def decode_windows(self, example: dict) -> tf.Tensor:
        """``spectrogram`` float32 [T, F, W] of an encoded example."""
        return tf.cast(self.features["spectrogram"].decode_example(example["spectrogram"]), tf.float32)

    def decode_faces(self, example: dict, indices: np.ndarray | None) -> tf.Tensor:
        """Face frames ``indices`` (all when None) of an encoded example, uint8 ``[k, S, S, 3]``.

        Frames stored as images (``tfds.features.Video``) are decoded one by one, only those
        asked for; a plain tensor feature is decoded whole, then indexed.
        """
        feature = self.features["faces"]
        if isinstance(feature, tfds.features.Video):
            encoded = example["faces"] if indices is None else tf.gather(example["faces"], indices)
            frame = feature.feature
            return tf.map_fn(frame.decode_example, encoded,
                             fn_output_signature=tf.TensorSpec(frame.shape, tf.uint8))
        faces = feature.decode_example(example["faces"])
        return faces if indices is None else tf.gather(faces, indices)


def stored_builder_dir(data_dir: str, dataset: str, builder_config: str = "") -> Path:
    """The version folder of a built dataset: ``data_dir/dataset[/config]/<latest version>``.

    With no ``builder_config`` the dataset folder must hold versions directly (a dataset
    without configs) or exactly one built config. Raises FileNotFoundError naming what exists.
    """
    root = Path(data_dir or tfds.core.constants.DATA_DIR) / dataset
    if builder_config:
        candidates = built_versions(root / builder_config)
        for old in old_names("data.builder_config", builder_config) if not candidates else ():
            if built_versions(root / old):      # a build made before the rename
                notice(f"the build {root / old} is read as data.builder_config={builder_config!r} "
                       f"(its old name {old!r})")
                candidates = built_versions(root / old)
    else:
        candidates = built_versions(root)
        if not candidates and root.is_dir():
            configs = [d for d in sorted(root.iterdir()) if built_versions(d)]
            if len(configs) > 1:
                raise FileNotFoundError(f"{root} holds the configs {[d.name for d in configs]}; "
                                        f"choose one with data.builder_config")
            candidates = built_versions(configs[0]) if configs else []
    if not candidates:
        name = dataset + (f"/{builder_config}" if builder_config else "")
        raise MissingBuildError(f"dataset {name!r} is not built under {root.parent}",
                                f"build it with `{_prepare_command(dataset, builder_config, root.parent)}`")
    return candidates[-1]


class MissingBuildError(InputError, FileNotFoundError):
    """The stored build a config asks for does not exist; the message names the prepare command."""


def _prepare_command(dataset: str, builder_config: str, data_dir: Path) -> str:
    """The ``mmae-jax prepare`` line that makes the build (a generic one for an unknown dataset)."""
    from mmae_jax.data_prep import registry
    try:
        return registry.prepare_command(dataset, builder_config, data_dir=data_dir)
    except (ValueError, KeyError):
        config = f" --config {builder_config}" if builder_config else ""
        return f"mmae-jax prepare {dataset}{config} --manual-dir RAW_DIR --data-dir {data_dir}"


def load_builder(data_cfg: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
    """The TFDS builder of the stored dataset, read from its files.

    Never through builder code: importing a data_prep builder registers its name with TFDS,
    and ``tfds.builder(name)`` would then look for the builder's default config instead.
    """
    builder = tfds.builder_from_directory(
        stored_builder_dir(data_cfg.data_dir, data_cfg.dataset, data_cfg.builder_config))
    missing = {"faces", "spectrogram", "label", "speaker", "clip_id"} - set(builder.info.features)
    if missing:
        raise ValueError(f"dataset {builder.data_dir} lacks the features {sorted(missing)}")
    if data_cfg.stored_split not in builder.info.splits:
        raise ValueError(f"dataset {builder.data_dir} has no split {data_cfg.stored_split!r} "
                         f"(has {sorted(builder.info.splits)})")
    return builder


def protocol_split_fn(data_cfg: ml_collections.ConfigDict, labels: Sequence[int] | None = None) -> SplitFn:
    """The split assignment of ``data_cfg.protocol`` / ``fold`` / ``split_seed`` for its dataset.

    ``labels``: the label of every stored example, in the order the clip ids will come
    (the ``notebook`` protocol stratifies by class). With ``data_cfg.split_dir`` set, the split
    is the one in those files (``read_split_names``), not drawn.
    """
    if data_cfg.get("split_dir", ""):
        return lambda clip_ids, speakers: read_split_names(data_cfg.split_dir, clip_ids)

    def assign(clip_ids: Sequence[str], speakers: Sequence[int]) -> Sequence[str]:
        return protocols.assign_splits(data_cfg.dataset, data_cfg.protocol, clip_ids, speakers,
                                       fold=data_cfg.fold, seed=data_cfg.split_seed, labels=labels)

    return assign


def read_split_names(split_dir: str | Path, clip_ids) -> np.ndarray:
    """[N] split names of ``clip_ids`` from the ``train.csv`` / ``validation.csv`` / ``test.csv``
    under ``split_dir`` ('train+validation' for a clip in both; '' for one in none).

    Raises InputError for a missing or malformed file, or clip ids the stored dataset lacks.
    """
    members: dict[str, list[str]] = {}
    for split in SPLITS:
        path = Path(split_dir) / f"{split}.csv"
        try:
            with open(path, newline="") as handle:
                rows = list(csv.DictReader(handle))
        except OSError as error:
            raise InputError(f"data.split_dir: can not read {path}: {error}",
                             "give a folder written by `mmae-jax splits`") from error
        if rows and "clip_id" not in rows[0]:
            raise InputError(f"{path} has no clip_id column", "give a file written by `mmae-jax splits`")
        for row in rows:
            members.setdefault(row["clip_id"], []).append(split)
    unknown = sorted(set(members) - set(clip_ids))
    if unknown:
        raise InputError(f"{split_dir}: {len(unknown)} clip ids are not in the stored dataset, e.g. "
                         f"{', '.join(unknown[:5])}", "use the split files of this build")
    return np.array(["+".join(members.get(clip_id, [])) for clip_id in clip_ids], dtype=object)


def open_dataset(data_cfg: ml_collections.ConfigDict, split_fn: SplitFn | None = None
                 ) -> StoredDataset:
    """Opens the stored dataset and assigns every example to a split.

    ``split_fn`` overrides the protocol of ``data_cfg`` (tests). The metadata pass is cached
    per stored dataset, so building the train and eval iterators reads it once.
    """
    key = (data_cfg.data_dir, data_cfg.dataset, data_cfg.builder_config, data_cfg.stored_split)
    clip_ids, speakers, labels = _read_metadata(*key)
    assign = split_fn or protocol_split_fn(data_cfg, labels.tolist())
    split_names = np.asarray(list(assign(list(clip_ids), speakers.tolist())), dtype=object)
    if split_names.shape != clip_ids.shape:
        raise ValueError(f"split assignment gave {split_names.shape[0]} names for "
                         f"{clip_ids.shape[0]} examples")
    builder = load_builder(data_cfg)
    if split_fn is None:
        check_class_set(data_cfg.dataset, data_cfg.protocol, builder.info.features["label"].names)
    return StoredDataset(builder, data_cfg.stored_split, clip_ids, speakers, split_names)


@functools.lru_cache(maxsize=8)
def _read_metadata(data_dir: str, dataset: str, builder_config: str, stored_split: str
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cfg = ml_collections.ConfigDict(dict(data_dir=data_dir, dataset=dataset,
                                         builder_config=builder_config, stored_split=stored_split))
    records = load_builder(cfg).as_dataset(
        split=stored_split, shuffle_files=False, read_config=tfds.ReadConfig(**_READ_CONFIG),
        decoders=tfds.decode.PartialDecoding({"clip_id": True, "speaker": True, "label": True}))
    clip_ids, speakers, labels = [], [], []
    for batch in records.batch(1024).as_numpy_iterator():
        clip_ids.extend(clip_id.decode() for clip_id in batch["clip_id"])
        speakers.extend(batch["speaker"].tolist())
        labels.extend(batch["label"].tolist())
    return (np.asarray(clip_ids, dtype=object), np.asarray(speakers, dtype=np.int64),
            np.asarray(labels, dtype=np.int64))



def read_stored_example(data_cfg: ml_collections.ConfigDict, clip: int | str) -> dict:
    """One decoded stored example, by global index or clip id (no split assignment needed).

    Returns NumPy values: ``faces`` uint8 [T, S, S, 3], ``spectrogram`` float32 [T, F, W],
    ``spectrogram_half`` float32 [T / 2, F, W] (a 'spanning' layout build) or None,
    ``label`` int, ``label_name``, ``speaker`` int, ``clip_id`` str, ``index`` int.
    """
    key = (data_cfg.data_dir, data_cfg.dataset, data_cfg.builder_config, data_cfg.stored_split)
    clip_ids, _, _ = _read_metadata(*key)
    if isinstance(clip, str) and not clip.isdigit():
        found = np.flatnonzero(clip_ids == clip)
        if not found.size:
            raise KeyError(f"no clip {clip!r} in {data_cfg.dataset} ({len(clip_ids)} clips)")
        index = int(found[0])
    else:
        index = int(clip)
    if not 0 <= index < len(clip_ids):
        raise IndexError(f"clip index {index} outside 0..{len(clip_ids) - 1} of {data_cfg.dataset}")
    builder = load_builder(data_cfg)
    records = builder.as_dataset(split=f"{data_cfg.stored_split}[{index}:{index + 1}]",
                                 shuffle_files=False, read_config=tfds.ReadConfig(**_READ_CONFIG))
    example = next(records.as_numpy_iterator())
    label = int(example["label"])
    half = example.get("spectrogram_half")
    return {"faces": example["faces"], "spectrogram": example["spectrogram"].astype(np.float32),
            "spectrogram_half": None if half is None else half.astype(np.float32), "label": label, "label_name": builder.info.features["label"].int2str(label),
            "speaker": int(example["speaker"]), "clip_id": example["clip_id"].decode(),
            "index": index}
