"""`mmae-jax splits --from-notebook-archive`: the notebook's own split recovered from an archive
laid out as RAVDESS_FSLF.zip (renamed fused FSLF mp4 files under {train,val,test}/<Class>/)."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

import media_factory as mf
from mmae_jax.data_prep import protocols

pytestmark = pytest.mark.xdist_group("notebook_archive")

FRAMES, SIZE, ARCHIVE_SIZE = 16, 32, 64
NAMES = protocols.class_names("ravdess", "paper7")
FOLDER_OF = {"happy": "Happy", "surprised": "Surprised", "neutral": "Neutral", "angry": "Angry",
             "disgust": "Disgust", "sad": "Sad", "fearful": "Fear"}


def _faces(clip: int) -> np.ndarray:
    """uint8 [16, S, S, 3]: a drawn face drifting its own way (faces of different clips look alike)."""
    return mf.drawn_face_frames(FRAMES, SIZE, SIZE, seed=clip)


def _stored_build(data_dir: Path, clips: int) -> list[dict]:
    """A 'paper'-build-like ravdess dataset of ``clips`` clips (16 faces at the paper positions)."""
    rng = np.random.default_rng(0)
    examples = [dict(faces=_faces(clip), spectrogram=rng.normal(size=(FRAMES, 13, 8)).astype(np.float32),
                     spectrogram_half=rng.normal(size=(FRAMES // 2, 13, 8)).astype(np.float32),
                     label=clip % len(NAMES), speaker=1 + clip % 4, clip_id=f"01-01-{clip:02d}-01-01-01-01")
                for clip in range(clips)]
    features = tfds.features.FeaturesDict({
        "faces": tfds.features.Tensor(shape=(FRAMES, SIZE, SIZE, 3), dtype=np.uint8),
        "spectrogram": tfds.features.Tensor(shape=(FRAMES, 13, 8), dtype=np.float32),
        "spectrogram_half": tfds.features.Tensor(shape=(FRAMES // 2, 13, 8), dtype=np.float32),
        "label": tfds.features.ClassLabel(names=list(NAMES)),
        "speaker": tfds.features.Scalar(dtype=np.int32),
        "clip_id": tfds.features.Text()})
    tfds.dataset_builders.store_as_tfds_dataset(
        name="ravdess", version="1.1.0", config="notebook_mfcc", features=features, data_dir=str(data_dir),
        split_datasets={"data": [(example["clip_id"], example) for example in examples]}, disable_shuffling=True)
    return examples


def _fused_fslf(example: dict, seed: int) -> np.ndarray:
    """The original's FSLF clip: 8 spectrogram pictures, then faces 0, 6, ..., 42 (stored 0, 2, ..., 14),
    every frame resized to the archive's size (the original: 224 x 224)."""
    import cv2

    rng = np.random.default_rng(seed)
    pictures = rng.integers(0, 256, (8, ARCHIVE_SIZE, ARCHIVE_SIZE, 3)).astype(np.uint8)
    faces = np.stack([cv2.resize(face, (ARCHIVE_SIZE, ARCHIVE_SIZE), interpolation=cv2.INTER_LINEAR)
                      for face in example["faces"][0:16:2]])
    return np.concatenate([pictures, faces])


def _archive(path: Path, examples: list[dict], split_names: np.ndarray, extra: dict | None = None) -> dict:
    """A zip laid out as RAVDESS_FSLF.zip; returns archive path -> clip id (the generated truth)."""
    truth, counters, folder = {}, {}, path.parent / "archive_src"
    for example, name in zip(examples, split_names):
        for split in str(name).split("+"):
            if not split:
                continue
            short = {"validation": "val"}.get(split, split)
            counters[short] = counters.get(short, 0) + 1
            relative = f"RAVDESS_FSLF/{short}/{FOLDER_OF[NAMES[example['label']]]}/{short}{counters[short]}.mp4"
            mf.write_video(folder / relative, _fused_fslf(example, len(truth)), 16)
            truth[relative] = example["clip_id"]
    for relative, frames in (extra or {}).items():
        mf.write_video(folder / relative, frames, 16)
    with zipfile.ZipFile(path, "w") as handle:
        for file in sorted(folder.rglob("*.mp4")):
            handle.write(file, file.relative_to(folder).as_posix())
    return truth


def _splits(tmp_path: Path, archive: Path, data_dir: Path, capsys) -> tuple[int, str, str]:
    from mmae_jax.cli import main

    code = main(["splits", "--config", "ravdess", f"--config.data.data_dir={data_dir}", "--out",
                 str(tmp_path / "out"), "--from-notebook-archive", str(archive)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    examples = _stored_build(data_dir, 28)
    labels = [example["label"] for example in examples]
    split_names = protocols.notebook_splits([e["clip_id"] for e in examples], labels, seed=3)
    return data_dir, examples, split_names


def test_the_archive_split_is_recovered_exactly_and_trains_as_protocol_notebook(build, tmp_path, capsys):
    data_dir, examples, split_names = build
    truth = _archive(tmp_path / "RAVDESS_FSLF.zip", examples, split_names)
    code, out, err = _splits(tmp_path, tmp_path / "RAVDESS_FSLF.zip", data_dir, capsys)
    assert code == 0, err
    matches = {row["archive_file"]: row["clip_id"]
               for row in csv.DictReader(open(tmp_path / "out" / "archive_matches.csv"))}
    assert matches == truth
    expected = {split: sorted(e["clip_id"] for e, name in zip(examples, split_names) if split in name.split("+"))
                for split in ("train", "validation", "test")}
    for split, clip_ids in expected.items():
        rows = list(csv.DictReader(open(tmp_path / "out" / f"{split}.csv")))
        assert [row["clip_id"] for row in rows] == clip_ids
    assert "validation inside training" in out and f"{len(expected['validation'])} of the" in out

    # protocol=notebook reads them instead of drawing its own
    from mmae_jax.config.defaults import default_data_config
    from mmae_jax.data.source import open_dataset

    cfg = default_data_config()
    cfg.update(dataset="ravdess", data_dir=str(data_dir), builder_config="notebook_mfcc", protocol="notebook",
               frame_sampling="notebook_timing", split_dir=str(tmp_path / "out"), split_seed=99)
    stored = open_dataset(cfg)
    got = dict(zip(stored.clip_ids.tolist(), stored.split_names.tolist()))
    assert got == {e["clip_id"]: name for e, name in zip(examples, split_names)}


def test_an_archive_with_files_that_match_no_clip_is_refused_naming_them(build, tmp_path, capsys):
    data_dir, examples, split_names = build
    stranger = np.concatenate([np.zeros((8, ARCHIVE_SIZE, ARCHIVE_SIZE, 3), np.uint8),
                               np.full((8, ARCHIVE_SIZE, ARCHIVE_SIZE, 3), 200, np.uint8)])
    _archive(tmp_path / "a.zip", examples, split_names, {"RAVDESS_FSLF/test/Sad/test999.mp4": stranger})
    code, out, err = _splits(tmp_path, tmp_path / "a.zip", data_dir, capsys)
    assert code == 2 and err.startswith("error: 1 of the") and "test999.mp4 (no stored clip" in err
    assert not (tmp_path / "out").exists()


def test_a_file_in_the_wrong_class_folder_is_refused(build, tmp_path, capsys):
    data_dir, examples, split_names = build
    wrong = _fused_fslf(examples[1], 0)                        # label 1 (happy), filed under Angry
    assert NAMES[examples[1]["label"]] != "angry"
    _archive(tmp_path / "b.zip", examples, split_names, {"RAVDESS_FSLF/train/Angry/train999.mp4": wrong})
    code, out, err = _splits(tmp_path, tmp_path / "b.zip", data_dir, capsys)
    assert code == 2 and "train999.mp4 (its folder says angry" in err
