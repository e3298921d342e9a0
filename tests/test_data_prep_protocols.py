"""Split protocols: speaker-independent folds and the paper's seeded random split."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from mmae_jax.data_prep import protocols

SPEAKERS = {
    "ravdess": list(range(1, 25)),
    "crema_d": list(range(1001, 1092)),
    "iemocap": [10 * session + gender for session in range(1, 6) for gender in (0, 1)],
    "synthetic": list(range(1, 31)),
}


def speakers_by_fold(dataset: str, protocol: str) -> list[dict[str, set[int]]]:
    """Each fold of ``protocol`` on two clips of every speaker of ``dataset``: split name -> the
    speakers whose clips it holds (only the splits that hold clips)."""
    clip_speakers = [s for s in SPEAKERS[dataset] for _ in range(2)]
    clip_ids = [f"{s}_{i}" for i, s in enumerate(clip_speakers)]
    folds = []
    for fold in range(protocols.num_folds(dataset)):
        splits = protocols.assign_splits(dataset, protocol, clip_ids, clip_speakers, fold=fold)
        folds.append({name: {s for s, split in zip(clip_speakers, splits) if split == name} for name in set(splits)})
    return folds


@pytest.mark.parametrize("dataset", sorted(SPEAKERS))
def test_kfold_never_puts_a_speaker_on_two_sides_and_tests_everyone_once(dataset):
    tested = collections.Counter()
    for sides in speakers_by_fold(dataset, "kfold"):
        assert set(sides) == set(protocols.SPLITS)                  # every split holds clips
        assert not (sides["train"] & sides["validation"] or sides["train"] & sides["test"]
                    or sides["validation"] & sides["test"])
        tested.update(sides["test"])
    assert sorted(tested) == sorted(SPEAKERS[dataset]) and set(tested.values()) == {1}


def test_fold_membership_matches_the_published_protocols():
    assert [protocols.speaker_fold("ravdess", a) for a in (1, 4, 5, 21, 24)] == [0, 0, 1, 5, 5]
    assert [protocols.speaker_fold("iemocap", s) for s in (10, 11, 50, 51)] == [0, 0, 4, 4]
    crema = collections.Counter(protocols.speaker_fold("crema_d", a) for a in SPEAKERS["crema_d"])
    assert sorted(crema) == [0, 1, 2, 3, 4] and max(crema.values()) - min(crema.values()) <= 1
    splits = protocols.assign_splits("ravdess", "kfold", ["a", "b", "c"], [1, 5, 9], fold=0)
    assert list(splits) == ["test", "validation", "train"]


def test_paper_split_is_720_360_360_seeded_and_order_free():
    clip_ids = [f"clip{i:04d}" for i in range(1440)]
    speakers = [i % 24 + 1 for i in range(1440)]
    splits = protocols.assign_splits("ravdess", "random_split", clip_ids, speakers, seed=3)
    assert collections.Counter(splits) == {"train": 720, "validation": 360, "test": 360}
    again = protocols.assign_splits("ravdess", "random_split", clip_ids[::-1], speakers[::-1], seed=3)
    assert list(again) == list(splits[::-1])
    other = protocols.assign_splits("ravdess", "random_split", clip_ids, speakers, seed=4)
    assert np.mean(other != splits) > 0.3


def test_class_names_and_bad_arguments():
    assert len(protocols.class_names("ravdess")) == 8
    assert protocols.class_names("ravdess", "paper7") == ("neutral", "happy", "sad", "angry", "fearful",
                                                         "disgust", "surprised")
    assert len(protocols.class_names("crema_d")) == 6 and len(protocols.class_names("iemocap")) == 4
    assert len(set(protocols.class_names("synthetic"))) == 8
    with pytest.raises(ValueError, match="paper7"):
        protocols.class_names("crema_d", "paper7")
    with pytest.raises(ValueError, match="folds 0..5"):
        protocols.kfold_split("ravdess", 6, 1)
    with pytest.raises(ValueError, match="unknown protocol"):
        protocols.assign_splits("ravdess", "lopo", ["a"], [1])


HICMAE_CREMA_D_TEST_ACTORS = [(1001, 1018), (1019, 1036), (1037, 1054), (1055, 1072), (1073, 1091)]


@pytest.mark.parametrize("dataset", ["ravdess", "crema_d", "iemocap"])
def test_hicmae_folds_keep_speakers_on_one_side_and_take_no_validation(dataset):
    tested = collections.Counter()
    for fold, sides in enumerate(speakers_by_fold(dataset, "hicmae")):
        assert set(sides) == {"train", "test"}
        train, test = sides["train"], sides["test"]
        assert not train & test and train | test == set(SPEAKERS[dataset])
        tested.update(test)
        if dataset == "ravdess":
            assert len(train) == 20 and sorted(test) == list(range(4 * fold + 1, 4 * fold + 5))
        if dataset == "crema_d":
            first, last = HICMAE_CREMA_D_TEST_ACTORS[fold]
            assert sorted(test) == list(range(first, last + 1))
        if dataset == "iemocap":
            assert sorted(test) == [10 * (fold + 1), 10 * (fold + 1) + 1]
    assert set(tested.values()) == {1}


def test_hicmae_needs_ravdess_8_classes():
    protocols.check_class_set("ravdess", "hicmae", protocols.RAVDESS_EMOTIONS)
    protocols.check_class_set("ravdess", "notebook", protocols.RAVDESS_PAPER7)
    with pytest.raises(ValueError, match="8 classes"):
        protocols.check_class_set("ravdess", "hicmae", protocols.RAVDESS_PAPER7)


def ravdess_paper7_clips():
    """RAVDESS's 1,440 speech clips (per actor: 4 neutral, 8 of each other emotion) with the
    7-class labels (calm merged into neutral: 288 neutral, 192 of each other class)."""
    clip_ids, labels = [], []
    for actor in range(1, 25):
        for emotion in range(8):              # 0 neutral, 1 calm, 2..7
            for take in range(4 if emotion == 0 else 8):
                clip_ids.append(f"{actor:02d}-{emotion}-{take}")
                labels.append(0 if emotion <= 1 else emotion - 1)
    return clip_ids, labels


def test_notebook_split_is_1080_720_360_stratified_overlapping_and_seeded():
    clip_ids, labels = ravdess_paper7_clips()
    speakers = [int(clip_id[:2]) for clip_id in clip_ids]
    splits = protocols.assign_splits("ravdess", "notebook", clip_ids, speakers, seed=0, labels=labels)
    train = protocols.split_membership(splits, "train")
    validation = protocols.split_membership(splits, "validation")
    test = protocols.split_membership(splits, "test")
    assert (train.sum(), validation.sum(), test.sum()) == (1080, 720, 360)
    assert not (train & test).any() and not (validation & test).any() and (validation <= train).all()
    test_per_class = collections.Counter(np.asarray(labels)[test].tolist())
    assert test_per_class == {0: 72, **{label: 48 for label in range(1, 7)}}
    again = protocols.assign_splits("ravdess", "notebook", clip_ids[::-1], speakers[::-1], seed=0,
                                    labels=labels[::-1])
    assert list(again) == list(splits[::-1])
    other = protocols.assign_splits("ravdess", "notebook", clip_ids, speakers, seed=1, labels=labels)
    assert np.mean(other != splits) > 0.3
    with pytest.raises(ValueError, match="needs one label per clip"):
        protocols.assign_splits("ravdess", "notebook", clip_ids, speakers)
