"""Class names, folds and train / validation / test assignment for every dataset.

Builders write every clip once, into one split named ``data``; the input pipeline applies a
protocol at load time with ``assign_splits`` (pure functions, no I/O):

- ``paper``: the original's seeded random split by clip, 50 / 25 / 25 (RAVDESS 1,440 clips ->
  720 / 360 / 360). The clip ids are sorted, then permuted by ``numpy.random.default_rng(seed)``,
  so the split depends only on the set of clip ids and the seed.
- ``kfold``: speaker-independent folds. Fold ``fold`` is the test set, fold ``fold + 1`` (mod the
  number of folds) is the validation set and the rest is training, so no speaker is in two of
  train / validation / test.
  RAVDESS: 6 folds of 4 actors (01-04, ..., 21-24). CREMA-D: 5 folds of consecutive actor ids
  (1001-1019, 1020-1037, 1038-1055, 1056-1073, 1074-1091). IEMOCAP: leave one session out
  (speaker id = 10 * session + 0 for the female / 1 for the male actor). Synthetic: 6 folds,
  actor a in fold (a - 1) mod 6, so any number of actors spreads evenly.

The builders write the clip ids and speakers of a build to ``builder.info.metadata['clips']``, so
the pipeline can compute the split table without reading the examples.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

SPLITS = ("train", "validation", "test")
PROTOCOLS = ("paper", "kfold")

RAVDESS_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
# The paper's 7 classes over all 1,440 clips: calm is merged into neutral (see docs/data.md).
RAVDESS_PAPER7 = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")
CREMA_D_EMOTIONS = ("anger", "disgust", "fear", "happy", "neutral", "sad")
IEMOCAP_EMOTIONS = ("neutral", "happy", "sad", "angry")
SYNTHETIC_CLASSES = tuple(f"{face}_{pitch}" for face in ("smile", "frown", "open", "flat")
                          for pitch in ("rising", "falling"))

_CLASS_NAMES = {
    "ravdess": {"default": RAVDESS_EMOTIONS, "paper7": RAVDESS_PAPER7},
    "crema_d": {"default": CREMA_D_EMOTIONS},
    "iemocap": {"default": IEMOCAP_EMOTIONS},
    "synthetic": {"default": SYNTHETIC_CLASSES},
}

NUM_FOLDS = {"ravdess": 6, "crema_d": 5, "iemocap": 5, "synthetic": 6}

CREMA_D_FIRST_ACTOR, CREMA_D_NUM_ACTORS = 1001, 91


def class_names(dataset: str, class_set: str = "default") -> tuple[str, ...]:
    """Label names of ``dataset`` in label-index order; ``class_set`` 'paper7' exists for RAVDESS."""
    _check_dataset(dataset)
    if class_set not in _CLASS_NAMES[dataset]:
        raise ValueError(f"{dataset} has class sets {sorted(_CLASS_NAMES[dataset])}, not {class_set!r}")
    return _CLASS_NAMES[dataset][class_set]


def num_folds(dataset: str) -> int:
    _check_dataset(dataset)
    return NUM_FOLDS[dataset]


def speaker_fold(dataset: str, speaker: int) -> int:
    """The k-fold index of a speaker id."""
    _check_dataset(dataset)
    if dataset == "ravdess":
        return (speaker - 1) // 4
    if dataset == "crema_d":
        return (speaker - CREMA_D_FIRST_ACTOR) * NUM_FOLDS[dataset] // CREMA_D_NUM_ACTORS
    if dataset == "iemocap":
        return speaker // 10 - 1
    return (speaker - 1) % NUM_FOLDS[dataset]


def kfold_split(dataset: str, fold: int, speaker: int) -> str:
    """'test' for fold ``fold``, 'validation' for the next fold, 'train' for the rest."""
    folds = num_folds(dataset)
    if not 0 <= fold < folds:
        raise ValueError(f"{dataset} has folds 0..{folds - 1}, not {fold}")
    own = speaker_fold(dataset, speaker)
    if not 0 <= own < folds:
        raise ValueError(f"speaker {speaker} is outside the {dataset} folds")
    if own == fold:
        return "test"
    return "validation" if own == (fold + 1) % folds else "train"


def paper_splits(clip_ids: Sequence[str], seed: int) -> np.ndarray:
    """[N] split names for the seeded random 50 / 25 / 25 split by clip."""
    order = sorted(clip_ids)
    if len(set(order)) != len(order):
        raise ValueError("clip ids must be unique")
    permuted = np.random.default_rng(seed).permutation(len(order))
    n_train, n_val = len(order) // 2, len(order) // 4
    split_of_rank = np.array(["train"] * n_train + ["validation"] * n_val + ["test"] * (len(order) - n_train - n_val))
    by_id = {order[index]: split_of_rank[rank] for rank, index in enumerate(permuted)}
    return np.array([by_id[clip_id] for clip_id in clip_ids], dtype=object)


def assign_splits(dataset: str, protocol: str, clip_ids: Sequence[str], speakers: Sequence[int],
                  fold: int = 0, seed: int = 0) -> np.ndarray:
    """[N] 'train' / 'validation' / 'test' for every clip (ids and speakers in the same order).

    ``fold`` is used by 'kfold' only, ``seed`` by 'paper' only.
    """
    _check_dataset(dataset)
    if len(clip_ids) != len(speakers):
        raise ValueError(f"{len(clip_ids)} clip ids but {len(speakers)} speakers")
    if protocol == "paper":
        return paper_splits(clip_ids, seed)
    if protocol == "kfold":
        return np.array([kfold_split(dataset, fold, int(s)) for s in speakers], dtype=object)
    raise ValueError(f"unknown protocol {protocol!r}; known: {PROTOCOLS}")


def _check_dataset(dataset: str) -> None:
    if dataset not in _CLASS_NAMES:
        raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(_CLASS_NAMES)}")
