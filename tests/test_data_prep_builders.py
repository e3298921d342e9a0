"""The TFDS builders on tiny trees in each dataset's real on-disk layout, bad input included."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

import media_factory as mf
from mmae_jax.data_prep import registry
from mmae_jax.data_prep.clip_builder import ClipBuilderConfig
from mmae_jax.data_prep.iemocap.iemocap_dataset_builder import IemocapConfig

pytestmark = pytest.mark.xdist_group("data_prep_builders")

TINY = dict(num_frames=4, image_size=32, detector="foreground", window_seconds=0.2)


def test_builder_config_sets_every_clip_spec_field():
    """A config takes every ClipSpec field as a keyword and hands all of them to clip_spec();
    a subclass's own default (SyntheticConfig.image_size) stays its own."""
    import dataclasses

    from mmae_jax.data_prep.media.clip import ClipSpec
    from mmae_jax.data_prep.synthetic.synthetic_dataset_builder import SyntheticConfig

    changed = dict(num_frames=8, image_size=32, framing="whole_frame", detector="foreground", face_margin=0.5,
                   detect_every=2, max_side=320, frame_sampling="notebook_timing", frame_stride=2,
                   window_layout="spanning", window_columns=20, sample_rate=44100, audio_channels="interleaved",
                   window_seconds=0.3,
                   features="mfcc", n_mels=64, mfcc_stride=0.001, peak_normalize=True)
    assert set(changed) == {field.name for field in dataclasses.fields(ClipSpec)}
    assert ClipBuilderConfig(name="all", **changed).clip_spec() == ClipSpec(**changed)
    assert SyntheticConfig(name="s", num_frames=8).clip_spec() == ClipSpec(num_frames=8, image_size=64,
                                                                          detector="foreground", face_margin=0.1)


def _clip(seconds: float = 1.0, fps: int = 15, seed: int = 0, size: int = 48) -> np.ndarray:
    return mf.drawn_face_frames(int(seconds * fps), size, size, seed)


def _build(name: str, manual_dir: Path | None, data_dir: Path, config) -> tuple[tfds.core.DatasetBuilder, dict]:
    builder = registry.builder_class(name)(data_dir=str(data_dir), config=config, num_workers=1)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=str(manual_dir) if manual_dir else None))
    examples = {ex["clip_id"].decode(): ex for ex in tfds.as_numpy(builder.as_dataset(split="data"))}
    return builder, examples


# ----------------------------------------------------------------------------- RAVDESS

@pytest.fixture(scope="module")
def ravdess_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ravdess")
    for actor, emotion in [(1, 1), (1, 2), (2, 5), (2, 8), (5, 3)]:
        mf.write_video(root / f"Actor_{actor:02d}" / f"01-01-{emotion:02d}-01-01-01-{actor:02d}.mp4",
                       _clip(seed=actor * 10 + emotion), 15, mf.tone(200 + 50 * emotion, 1.0))
    mf.write_video(root / "Actor_01" / "02-01-03-01-01-01-01.mp4", _clip(), 15)                      # video-only: excluded
    mf.write_video(root / "Actor_02" / "01-01-04-01-01-01-02.mp4", _clip(), 15, None)                # no audio
    mf.write_video(root / "Actor_02" / "01-01-06-01-01-01-02.mp4", _clip(0.2), 15, mf.tone(300, 0.2))  # 3 frames
    (root / "Actor_05" / "01-01-07-01-01-01-05.mp4").write_bytes(os.urandom(3000))                   # corrupt
    mf.write_video(root / "Actor_05" / "01-01-03-01-01-01-06.mp4", _clip(), 15, mf.tone(300, 1.0))   # actor mismatch
    return root


def test_ravdess_builds_labels_speakers_ids_and_shapes(ravdess_tree, tmp_path):
    builder, examples = _build("ravdess", ravdess_tree, tmp_path, ClipBuilderConfig(name="tiny", **TINY))
    assert sorted(examples) == ["01-01-01-01-01-01-01", "01-01-02-01-01-01-01", "01-01-03-01-01-01-05",
                                "01-01-05-01-01-01-02", "01-01-08-01-01-01-02"]
    names = builder.info.features["label"].names
    assert names == ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    for clip_id, example in examples.items():
        assert names[example["label"]] == names[int(clip_id.split("-")[2]) - 1]
        assert example["speaker"] == int(clip_id.split("-")[6])
        assert example["faces"].shape == (4, 32, 32, 3) and example["faces"].dtype == np.uint8
        assert example["spectrogram"].shape == (4, 128, 18) and example["spectrogram"].dtype == np.float32
    report = builder.report
    assert report.written == 5
    assert report.skipped_by_kind() == {"no_audio": 1, "too_short": 1, "corrupt": 1, "bad_name": 1}
    assert {Path(path).name for path, _, _ in report.skipped} == {
        "01-01-04-01-01-01-02.mp4", "01-01-06-01-01-01-02.mp4", "01-01-07-01-01-01-05.mp4", "01-01-03-01-01-01-06.mp4"}
    assert report.excluded == {"not an audio-video speech clip": 1}
    assert "4 skipped as bad input" in report.summary()
    reopened = registry.open_built(tmp_path, "ravdess", "tiny")
    listed = reopened.info.metadata["listed_clip_ids"]            # what a re-run of prepare compares
    assert len(listed) == len(set(listed)) == 8
    assert set(listed) - set(examples) == {Path(path).stem for path, kind, _ in report.skipped if kind != "bad_name"}


def test_ravdess_paper7_merges_calm_into_neutral(ravdess_tree, tmp_path):
    builder, examples = _build("ravdess", ravdess_tree, tmp_path,
                               ClipBuilderConfig(name="tiny7", class_set="paper7", framing="whole_frame", **TINY))
    names = builder.info.features["label"].names
    assert len(names) == 7 and "calm" not in names
    assert names[examples["01-01-02-01-01-01-01"]["label"]] == "neutral"
    assert names[examples["01-01-08-01-01-01-02"]["label"]] == "surprised"


# ----------------------------------------------------------------------------- CREMA-D

@pytest.fixture(scope="module")
def crema_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("crema_d")
    for stem in ["1001_DFA_ANG_XX", "1001_IEO_HAP_HI", "1045_TIE_SAD_LO", "1091_MTI_NEU_XX"]:
        mf.write_video(root / "VideoFlash" / f"{stem}.flv", _clip(), 15)
        mf.write_wav(root / "AudioWAV" / f"{stem}.wav", mf.tone(250, 1.0, 16000))
    mf.write_video(root / "VideoFlash" / "1002_DFA_FEA_XX.flv", _clip(), 15)                 # no wav
    mf.write_video(root / "VideoFlash" / "1003_DFA_DIS_XX.flv", _clip(), 15)
    (root / "AudioWAV" / "1003_DFA_DIS_XX.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)      # unreadable wav
    return root


def test_crema_d_builds_from_flv_and_wav(crema_tree, tmp_path):
    builder, examples = _build("crema_d", crema_tree, tmp_path, ClipBuilderConfig(name="tiny", **TINY))
    names = builder.info.features["label"].names
    assert {k: (names[v["label"]], int(v["speaker"])) for k, v in examples.items()} == {
        "1001_DFA_ANG_XX": ("anger", 1001), "1001_IEO_HAP_HI": ("happy", 1001),
        "1045_TIE_SAD_LO": ("sad", 1045), "1091_MTI_NEU_XX": ("neutral", 1091)}
    assert builder.report.skipped_by_kind() == {"missing_audio": 1, "unreadable_audio": 1}


# ----------------------------------------------------------------------------- IEMOCAP

EVALUATION = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[0.5000 - 2.0000]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]
C-E2:\tNeutral;\t()

[2.5000 - 4.0000]\tSes01F_impro01_M000\texc\t[3.0000, 3.0000, 3.0000]
[4.2000 - 5.5000]\tSes01F_impro01_F001\tfru\t[2.0000, 3.0000, 3.0000]
[6.0000 - 5.0000]\tSes01F_impro01_M001\tang\t[2.0000, 3.0000, 3.0000]
[x.1 - 7.0000]\tSes01F_impro01_M002\tang\t[2.0000, 3.0000, 3.0000]
"""


@pytest.fixture(scope="module")
def iemocap_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("iemocap")
    session = root / "Session1"
    frames = np.zeros((8 * 15, 48, 96, 3), np.uint8)
    frames[:, :, :48] = 40                                       # left half darker than the right half
    frames[:, :, 48:] = 200
    mf.write_video(session / "dialog" / "avi" / "DivX" / "Ses01F_impro01.avi", frames, 15)
    (session / "dialog" / "EmoEvaluation").mkdir(parents=True)
    (session / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt").write_text(EVALUATION)
    for utterance, seconds in [("Ses01F_impro01_F000", 1.5), ("Ses01F_impro01_M000", 1.5)]:
        mf.write_wav(session / "sentences" / "wav" / "Ses01F_impro01" / f"{utterance}.wav",
                     mf.tone(300, seconds, 16000), 16000)
    return root


def test_iemocap_cuts_utterances_and_keeps_the_speakers_half(iemocap_tree, tmp_path):
    config = IemocapConfig(name="tiny", framing="whole_frame", **TINY)
    builder, examples = _build("iemocap", iemocap_tree, tmp_path, config)
    names = builder.info.features["label"].names
    assert {k: (names[v["label"]], int(v["speaker"])) for k, v in examples.items()} == {
        "Ses01F_impro01_F000": ("neutral", 10), "Ses01F_impro01_M000": ("happy", 11)}
    # the female actor (who wore the markers in Ses01F) is on the left half by default
    assert examples["Ses01F_impro01_F000"]["faces"].mean() < 60
    assert examples["Ses01F_impro01_M000"]["faces"].mean() > 180
    assert builder.report.skipped_by_kind() == {"bad_times": 2}
    assert all("Ses01F_impro01.txt:" in path for path, _, _ in builder.report.skipped)
    assert builder.report.excluded == {"label fru": 1}


@pytest.mark.parametrize("name", sorted(registry.BUILDER_MODULES))
def test_tfds_build_finds_each_builder_by_folder(name):
    """``tfds build data_prep/<name>`` loads <name>/<name>_dataset_builder.py as a top-level package."""
    from tensorflow_datasets.scripts.cli import build

    folder = Path(__file__).resolve().parent.parent / "data_prep" / name
    builder_cls, _ = build._get_builder_cls_and_kwargs(str(folder), has_imports=False)
    assert builder_cls.name == name
    assert builder_cls.BUILDER_CONFIGS[0].name == "logmel"
    assert {"whole_frame", "mfcc_paper", "whole_frame_mfcc", "notebook_mfcc", "notebook_mfcc_10ms"} <= {c.name for c in builder_cls.BUILDER_CONFIGS}
