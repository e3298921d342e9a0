"""Which stored clips belong to train / validation / test: the protocols of data_prep.

Each dataset is stored once, in one TFDS split; the protocol (a seeded random split, the
notebook's class-stratified split or speaker-independent folds) is applied here, at load
time. A ``SplitFn`` maps the clip ids and speakers of all stored examples to split names;
``protocol_split_fn`` is the one place that connects the pipeline to ``data_prep.protocols``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import ml_collections

from data_prep import protocols
from data_prep.protocols import SPLITS, check_class_set, split_membership  # noqa: F401 (re-exported)

SplitFn = Callable[[Sequence[str], Sequence[int]], Sequence[str]]


def protocol_split_fn(data_cfg: ml_collections.ConfigDict, labels: Sequence[int] | None = None) -> SplitFn:
    """The split assignment of ``data_cfg.protocol`` / ``fold`` / ``split_seed`` for its dataset.

    ``labels``: the label of every stored example, in the order the clip ids will come
    (the ``notebook`` protocol stratifies by class). With ``data_cfg.split_dir`` set, the split
    is the one in those files (``split_files.read_split_names``), not drawn.
    """
    if data_cfg.get("split_dir", ""):
        from mmae_jax.data.split_files import read_split_names

        return lambda clip_ids, speakers: read_split_names(data_cfg.split_dir, clip_ids)

    def assign(clip_ids: Sequence[str], speakers: Sequence[int]) -> Sequence[str]:
        return protocols.assign_splits(data_cfg.dataset, data_cfg.protocol, clip_ids, speakers,
                                       fold=data_cfg.fold, seed=data_cfg.split_seed, labels=labels)

    return assign
