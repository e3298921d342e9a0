"""Which stored clips belong to train / validation / test: the protocols of data_prep.

Each dataset is stored once, in one TFDS split; the protocol (a seeded random split, the
notebook's class-stratified split or speaker-independent folds) is applied here, at load
time. A ``SplitFn`` maps the clip ids and speakers of all stored examples to split names;
``protocol_split_fn`` is the one place that connects the pipeline to ``data_prep.protocols``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable, Sequence

import ml_collections
import numpy as np

from data_prep import protocols
from data_prep.protocols import SPLITS, check_class_set, split_membership  # noqa: F401 (re-exported)
from mmae_jax.errors import InputError

SplitFn = Callable[[Sequence[str], Sequence[int]], Sequence[str]]


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
