"""Class names, folds and train / validation / test assignment for every dataset.

Builders write every clip once, into one split named ``data``; the input pipeline applies a
protocol at load time with ``assign_splits`` (pure functions, no I/O):

- ``random_split``: the original's seeded random split by clip, 50 / 25 / 25 (RAVDESS 1,440 clips ->
  720 / 360 / 360). The clip ids are sorted, then permuted by ``numpy.random.default_rng(seed)``,
  so the split depends only on the set of clip ids and the seed.
- ``kfold``: speaker-independent folds. Fold ``fold`` is the test set, fold ``fold + 1`` (mod the
  number of folds) is the validation set and the rest is training, so no speaker is in two of
  train / validation / test.
  RAVDESS: 6 folds of 4 actors (01-04, ..., 21-24). CREMA-D: 5 folds of consecutive actor ids
  (1001-1019, 1020-1037, 1038-1055, 1056-1073, 1074-1091). IEMOCAP: leave one session out
  (speaker id = 10 * session + 0 for the female / 1 for the male actor). Synthetic: 6 folds,
  actor a in fold (a - 1) mod 6, so any number of actors spreads evenly.
- ``hicmae``: the speaker-independent folds of the strongest published systems (HiCMAE's split
  files, sunlicai/HiCMAE ``saved/data/*/audio_visual/split*/``): fold ``fold`` is the test set and
  every other fold trains; there is no validation set. RAVDESS: the 6 folds of 4 actors above
  (20 training actors), all 8 classes. CREMA-D: actors 1001-1018, 1019-1036, 1037-1054,
  1055-1072, 1073-1091. IEMOCAP: leave one session out. Synthetic: as ``kfold``.
- ``notebook``: the original notebook's split (1080 / 720 / 360 on RAVDESS): a class-stratified
  25% of every class is the test set, the rest trains, and a class-stratified two thirds of the
  training clips is also the validation set (``train+validation``: the notebook's validation
  folder overlaps its training folder; its numbers are the final model's, so validation only
  monitors). Seeded like ``random_split``; needs the labels.

A clip of an overlapping protocol carries a split name joined by ``+``; ``split_membership``
reads it.

The input pipeline assigns splits from the stored examples' clip id, speaker and label
(``mmae_jax.data.source``), read once per stored dataset.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

SPLITS = ("train", "validation", "test")
PROTOCOLS = ("random_split", "kfold", "hicmae", "notebook")
FOLD_PROTOCOLS = ("kfold", "hicmae")   # protocols with a ``fold`` argument

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
# HiCMAE's CREMA-D folds: 18 actors each, the last fold also takes actor 1091.
HICMAE_CREMA_D_FOLD_ACTORS = 18
# The notebook split's fractions: of each class, of all its clips / of its training clips.
NOTEBOOK_TEST_FRACTION, NOTEBOOK_VALIDATION_FRACTION = 0.25, 2 / 3


def class_names(dataset: str, class_set: str = "default") -> tuple[str, ...]:
    """Label names of ``dataset`` in label-index order; ``class_set`` 'paper7' exists for RAVDESS."""
    _check_dataset(dataset)
    if class_set not in _CLASS_NAMES[dataset]:
        raise ValueError(f"{dataset} has class sets {sorted(_CLASS_NAMES[dataset])}, not {class_set!r}")
    return _CLASS_NAMES[dataset][class_set]


def num_folds(dataset: str) -> int:
    _check_dataset(dataset)
    return NUM_FOLDS[dataset]


def speaker_fold(dataset: str, speaker: int, protocol: str = "kfold") -> int:
    """The fold index of a speaker id under ``protocol`` (kfold | hicmae)."""
    _check_dataset(dataset)
    if dataset == "crema_d" and protocol == "hicmae":
        return min((speaker - CREMA_D_FIRST_ACTOR) // HICMAE_CREMA_D_FOLD_ACTORS, NUM_FOLDS[dataset] - 1)
    if dataset == "ravdess":
        return (speaker - 1) // 4
    if dataset == "crema_d":
        return (speaker - CREMA_D_FIRST_ACTOR) * NUM_FOLDS[dataset] // CREMA_D_NUM_ACTORS
    if dataset == "iemocap":
        return speaker // 10 - 1
    return (speaker - 1) % NUM_FOLDS[dataset]


def kfold_split(dataset: str, fold: int, speaker: int, protocol: str = "kfold") -> str:
    """'test' for fold ``fold``; 'validation' for the next fold (``kfold`` only); 'train' for the rest."""
    folds = num_folds(dataset)
    if not 0 <= fold < folds:
        raise ValueError(f"{dataset} has folds 0..{folds - 1}, not {fold}")
    own = speaker_fold(dataset, speaker, protocol)
    if not 0 <= own < folds:
        raise ValueError(f"speaker {speaker} is outside the {dataset} folds")
    if own == fold:
        return "test"
    return "validation" if protocol == "kfold" and own == (fold + 1) % folds else "train"


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


def notebook_splits(clip_ids: Sequence[str], labels: Sequence[int], seed: int) -> np.ndarray:
    """[N] 'test' / 'train' / 'train+validation' for the notebook's class-stratified split.

    Per class (clip ids sorted, then permuted by ``default_rng(seed)``): the first
    round(25%) are test, the others train, and round(2/3) of those also validate.
    """
    if len(set(clip_ids)) != len(clip_ids):
        raise ValueError("clip ids must be unique")
    by_id = {}
    rng = np.random.default_rng(seed)
    for label in sorted(set(int(value) for value in labels)):
        members = sorted(c for c, value in zip(clip_ids, labels) if int(value) == label)
        order = [members[i] for i in rng.permutation(len(members))]
        n_test = int(round(len(members) * NOTEBOOK_TEST_FRACTION))
        n_val = int(round((len(members) - n_test) * NOTEBOOK_VALIDATION_FRACTION))
        for rank, clip_id in enumerate(order):
            by_id[clip_id] = ("test" if rank < n_test else
                              "train+validation" if rank < n_test + n_val else "train")
    return np.array([by_id[clip_id] for clip_id in clip_ids], dtype=object)


def split_membership(split_names: Sequence[str], split: str) -> np.ndarray:
    """[N] bool: which clips belong to ``split`` (a name like 'train+validation' is in both)."""
    return np.array([split in str(name).split("+") for name in split_names], dtype=bool)


def check_class_set(dataset: str, protocol: str, class_names: Sequence[str]) -> None:
    """The ``hicmae`` protocol compares with systems trained on RAVDESS's 8 classes."""
    if protocol == "hicmae" and dataset == "ravdess" and tuple(class_names) != RAVDESS_EMOTIONS:
        raise ValueError(f"protocol hicmae needs RAVDESS's 8 classes but this build has "
                         f"{len(class_names)} (use an 8-class build: `mmae-jax prepare ravdess "
                         f"--config logmel ...` and data.builder_config=logmel)")


def assign_splits(dataset: str, protocol: str, clip_ids: Sequence[str], speakers: Sequence[int],
                  fold: int = 0, seed: int = 0, labels: Sequence[int] | None = None) -> np.ndarray:
    """[N] 'train' / 'validation' / 'test' (or 'train+validation') for every clip.

    ``clip_ids``, ``speakers`` and ``labels`` are in the same order. ``fold`` is used by the
    fold protocols (kfold, hicmae), ``seed`` by 'random_split' and 'notebook', ``labels`` by
    'notebook' only.
    """
    _check_dataset(dataset)
    if len(clip_ids) != len(speakers):
        raise ValueError(f"{len(clip_ids)} clip ids but {len(speakers)} speakers")
    if protocol == "random_split":
        return paper_splits(clip_ids, seed)
    if protocol in FOLD_PROTOCOLS:
        return np.array([kfold_split(dataset, fold, int(s), protocol) for s in speakers], dtype=object)
    if protocol == "notebook":
        if labels is None or len(labels) != len(clip_ids):
            raise ValueError("protocol notebook stratifies by class and needs one label per clip")
        return notebook_splits(clip_ids, labels, seed)
    raise ValueError(f"unknown protocol {protocol!r}; known: {PROTOCOLS}")


def _check_dataset(dataset: str) -> None:
    if dataset not in _CLASS_NAMES:
        raise ValueError(f"unknown dataset {dataset!r}; known: {sorted(_CLASS_NAMES)}")
