"""The synthetic builder (render -> RAVDESS code path, on two worker processes) and `mmae-jax prepare`."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

import media_factory as mf
from mmae_jax.data_prep import protocols, registry
from mmae_jax.data_prep.synthetic import render
from mmae_jax.data_prep.synthetic.synthetic_dataset_builder import SyntheticConfig
from mmae_jax.cli import main as cli_main

pytestmark = pytest.mark.xdist_group("data_prep_synthetic")


def _pitch_slope(spectrogram: np.ndarray) -> float:
    """Slope over windows of the strongest mel bin (the fundamental's harmonics move together)."""
    centroid = [(w.mean(axis=1) * np.arange(w.shape[0])).sum() / w.mean(axis=1).sum()
                for w in np.exp(spectrogram)]
    return float(np.polyfit(np.arange(len(centroid)), centroid, 1)[0])


def test_synthetic_build_is_real_mp4_through_the_ravdess_path(tmp_path):
    config = SyntheticConfig(name="tiny", num_actors=3, repetitions=1, seconds=1.5, num_frames=8, image_size=32)
    builder = registry.builder_class("synthetic")(data_dir=str(tmp_path / "data"), config=config, num_workers=2)
    builder.download_and_prepare(download_dir=str(tmp_path / "dl"))
    rendered = sorted((tmp_path / "dl" / "synthetic_ravdess" / "tiny").glob("Actor_*/*.mp4"))
    assert len(rendered) == 3 * 8 and rendered[0].name == "01-01-01-01-01-01-01.mp4"
    examples = list(tfds.as_numpy(builder.as_dataset(split="data")))
    assert len(examples) == 24 and builder.report.face_fallbacks == []
    names = builder.info.features["label"].names
    assert tuple(names) == protocols.SYNTHETIC_CLASSES
    for example in examples:
        name = names[example["label"]]
        assert int(example["clip_id"].decode().split("-")[2]) == names.index(name) + 1
        slope = _pitch_slope(example["spectrogram"])
        assert (slope > 0) == name.endswith("rising"), (example["clip_id"], slope)
        assert example["faces"].shape == (8, 32, 32, 3)
        # the crop is centred on the face: the face colour fills the middle of every crop
        assert example["faces"][:, 12:20, 12:20].mean() > 100


def test_prepare_command_builds_a_named_config(tmp_path, capsys):
    root = tmp_path / "raw"
    for emotion in (1, 5):
        mf.write_video(root / "Actor_03" / f"01-01-{emotion:02d}-01-01-01-03.mp4",
                       mf.drawn_face_frames(20, 64, 64), 15, mf.tone(300, 1.4))
    assert cli_main(["prepare", "ravdess", "--manual-dir", str(root), "--data-dir", str(tmp_path / "data"),
                     "--config", "whole_frame", "--workers", "1"]) == 0
    captured = capsys.readouterr()
    assert "ravdess/whole_frame is in" in captured.out
    # Output that is not a terminal (a log file) gets no progress-bar redraws.
    assert "\r" not in captured.out + captured.err, captured.err[-500:]
    built = registry.open_built(tmp_path / "data", "ravdess", "whole_frame")
    examples = list(tfds.as_numpy(built.as_dataset(split="data")))
    assert [e["faces"].shape for e in examples] == [(16, 224, 224, 3)] * 2
    assert [e["spectrogram"].shape for e in examples] == [(16, 128, 48)] * 2
    assert sorted(e["speaker"] for e in examples) == [3, 3]


def _head_roll(frames: np.ndarray, first: int, last: int, background: np.ndarray) -> float:
    """Degrees (counter-clockwise positive, as cv2) that best turn the drawing ink of frame
    ``first`` into that of frame ``last``, about each frame's face centre."""
    def ink_and_centre(frame):
        face = np.abs(frame.astype(np.float32) - background).sum(axis=-1) > 60
        ys, xs = np.nonzero(face)
        ink = (face & (frame.max(axis=-1) < 70)).astype(np.float32)
        return ink, (float(xs.mean()), float(ys.mean()))

    (ink_a, (xa, ya)), (ink_b, (xb, yb)) = ink_and_centre(frames[first]), ink_and_centre(frames[last])
    size = ink_a.shape[::-1]

    def overlap(angle):
        matrix = cv2.getRotationMatrix2D((xa, ya), angle, 1.0)
        matrix[:, 2] += (xb - xa, yb - ya)
        return float((cv2.warpAffine(ink_a, matrix, size) * ink_b).sum())

    return max(range(-45, 46), key=overlap)


def _syllable_rate(audio: np.ndarray, sample_rate: int) -> float:
    """The strongest loudness-envelope frequency (Hz) between 1 and 10 Hz (10 ms RMS frames)."""
    hop = sample_rate // 100
    envelope = np.sqrt((audio[: len(audio) // hop * hop].reshape(-1, hop) ** 2).mean(axis=1))
    spectrum = np.abs(np.fft.rfft(envelope - envelope.mean(), n=1000))
    freqs = np.fft.rfftfreq(1000, d=0.01)
    band = (freqs >= 1) & (freqs <= 10)
    return float(freqs[band][np.argmax(spectrum[band])])


def _pitch(audio: np.ndarray, sample_rate: int) -> float:
    """Fundamental (Hz) of a short voiced piece: the autocorrelation peak between 50 and 600 Hz."""
    piece = audio - audio.mean()
    corr = np.correlate(piece, piece, "full")[len(piece) - 1:]
    low, high = sample_rate // 600, sample_rate // 50
    return sample_rate / (low + int(np.argmax(corr[low:high])))


def test_coupled_style_puts_the_whole_class_in_each_modality():
    """Coupled style: the voice shows the expression (syllable rate) besides the contour (pitch
    direction), and the face shows the contour (head roll direction) besides the expression,
    everything after a per-clip onset; so either modality alone determines the class."""
    spec = render.RenderSpec(style="coupled", seed=5)
    onsets, rates = [], {}
    for actor in (1, 2):
        look = render.make_actor(actor, spec.seed)
        for class_index, name in enumerate(protocols.SYNTHETIC_CLASSES):
            expression, contour = name.split("_")
            frames, audio = render.render_clip(look, name, spec, np.random.default_rng([actor, class_index]))
            onset = np.random.default_rng([actor, class_index]).uniform(0.1, 0.5)   # the first draw
            onsets.append(onset)
            rate = _syllable_rate(audio[int(onset * len(audio)) + 800:], spec.sample_rate)
            assert abs(rate - render.COUPLED_SYLLABLE_HZ[expression]) < 0.6, (name, rate)
            rates.setdefault(expression, []).append(rate)
            piece = int(0.05 * spec.sample_rate)
            start = int(onset * len(audio)) + 400
            ratio = _pitch(audio[-piece:], spec.sample_rate) / _pitch(audio[start:start + piece], spec.sample_rate)
            assert (ratio > 1.3) if contour == "rising" else (ratio < 1 / 1.3), (name, ratio)
            background = np.median(np.concatenate([frames[0, 0], frames[0, -1]]), axis=0)
            first = int(np.ceil(onset * (len(frames) - 1))) + 1
            roll = _head_roll(frames, first, len(frames) - 1, background)
            assert (roll >= 10) if contour == "rising" else (roll <= -10), (name, roll)
    assert np.ptp(onsets) > 0.2                          # the onset is nuisance, not a constant
    typical = sorted(np.median(r) for r in rates.values())   # the voice tells the 4 expressions apart
    assert len(typical) == 4 and np.diff(typical).min() > 1.0, rates


def test_default_style_renders_the_independent_classes():
    """The default spec keeps the independent style: the same clip as the independent renderers."""
    spec = render.RenderSpec(num_actors=1, seconds=1.0)
    look = render.make_actor(1, spec.seed)
    frames, audio = render.render_clip(look, "smile_falling", spec, np.random.default_rng(3))
    rng = np.random.default_rng(3)
    np.testing.assert_array_equal(frames, render.render_frames(look, "smile", spec, rng))
    np.testing.assert_array_equal(audio, render.render_voice(look, "falling", spec, rng))
    with pytest.raises(ValueError, match="render style"):
        render.RenderSpec(style="coupledd")
