"""The original's timing ('paper' builder configs): which frames, which audio spans, which MFCC
columns, checked on clips whose pixels encode the frame index and whose tone encodes the time."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds

import media_factory as mf
from mmae_jax.data_prep import clip_builder, registry
from mmae_jax.data_prep.media import audio, video
from mmae_jax.data_prep.media.clip import ClipSource, ClipSpec, process_clip

pytestmark = pytest.mark.xdist_group("data_prep_paper")

FPS = 30
GREY_PER_FRAME = 4  # frame k of an index-coded clip shows grey level 4 k


def _index_coded_video(path, num_frames: int, sound: np.ndarray | None = None, sample_rate: int = 44100):
    levels = GREY_PER_FRAME * np.arange(num_frames)
    return mf.write_video(path, mf.plain_frames(num_frames, 32, 32, levels), FPS, sound, sample_rate)


def _shown_indices(frames: np.ndarray) -> np.ndarray:
    return np.round(frames.reshape(len(frames), -1).mean(axis=1) / GREY_PER_FRAME).astype(int)


def _spans_as_published(length: int, count: int) -> list[tuple[int, int]]:
    """The original scripts' loop, written out: ``step = int(len / (N + 1)) - 1``,
    ``tx = arange(0, len, step)``, window i = ``[tx[i], tx[i + 2])``."""
    step = int(length / (count + 1)) - 1
    tx = np.arange(0, length, step)
    return [(int(tx[i]), int(tx[i + 2])) for i in range(count)]


# ----------------------------------------------------------------------------- frames

@pytest.mark.parametrize("available", [60, 50])
def test_notebook_timing_takes_every_third_frame_from_the_first(tmp_path, available):
    path = _index_coded_video(tmp_path / "c.mp4", available)
    sampled = video.frames_at_stride(str(path), 16, 3)
    np.testing.assert_array_equal(_shown_indices(sampled.frames), np.arange(0, 48, 3))
    np.testing.assert_allclose(sampled.times, np.arange(0, 48, 3) / FPS, atol=1e-3)
    # the 8+8 strategies' frames (stride 6) are the even positions of this set
    np.testing.assert_array_equal(_shown_indices(sampled.frames[::2]), np.arange(0, 48, 6))


def test_notebook_timing_repeats_the_last_frame_of_a_short_clip(tmp_path):
    path = _index_coded_video(tmp_path / "short.mp4", 20)
    shown = _shown_indices(video.frames_at_stride(str(path), 16, 3).frames)
    np.testing.assert_array_equal(shown, np.minimum(np.arange(0, 48, 3), 19))
    np.testing.assert_array_equal(video.stride_indices(16, 3, 20), np.minimum(np.arange(16) * 3, 19))


def test_notebook_timing_counts_from_the_clip_start(tmp_path):
    path = _index_coded_video(tmp_path / "long.mp4", 60)
    sampled = video.frames_at_stride(str(path), 4, 3, start=1.0, end=1.5)
    np.testing.assert_array_equal(_shown_indices(sampled.frames), 30 + np.arange(0, 12, 3))


# ----------------------------------------------------------------------------- audio spans

@pytest.mark.parametrize("length", [132300, 154350, 1000, 37])
@pytest.mark.parametrize("count", [8, 16])
def test_window_spans_follow_the_published_formula(length, count):
    spans = audio.paper_window_spans(length, count)
    assert [tuple(span) for span in spans] == _spans_as_published(length, count)
    ramp = np.arange(length, dtype=np.float64)
    windows = audio.cut_spans(ramp, spans)
    np.testing.assert_array_equal(windows[:, 0], spans[:, 0])
    np.testing.assert_array_equal(windows[:, -1], spans[:, 1] - 1)


def test_window_spans_of_a_too_short_clip_raise():
    with pytest.raises(audio.BadInputError, match="x.wav") as info:
        audio.paper_window_spans(30, 16, source="x.wav")
    assert info.value.kind == "audio_too_short"


def test_picked_columns_are_exactly_those_frames_of_the_full_mfcc():
    windows = np.random.default_rng(1).normal(size=(2, 9000))
    full = audio.mfcc_paper(windows, 0.0001, 44100)                   # W = 1,975 frames of 1,102 samples
    picked = audio.mfcc_paper(windows, 0.0001, 44100, columns=310)
    assert full.shape == (2, 13, 1975) and picked.shape == (2, 13, 310)
    np.testing.assert_allclose(picked, full[..., audio.picked_steps(1975, 310)], rtol=1e-5, atol=1e-4)
    assert audio.picked_steps(1975, 310)[[0, -1]].tolist() == [3, 1971]
    # fewer frames than columns: each frame repeated, nearest neighbour
    assert audio.picked_steps(4, 8).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


@pytest.mark.parametrize("steps", [620, 930, 1975, 3100, 8299, 311])
def test_picked_columns_are_those_matplotlib_draws(steps):
    """The notebook's matshow of a [13, steps] MFCC on a 4x4-inch figure: 310 plot columns."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    marked = np.zeros((13, steps))
    marked[:, audio.picked_steps(steps, audio.PAPER_WINDOW_COLUMNS)] = 1.0
    figure, axes = plt.subplots(figsize=(4, 4))
    axes.matshow(marked, interpolation="nearest", aspect="auto", origin="lower")
    plt.axis("off")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    row = np.asarray(Image.open(buffer).convert("RGB"))[200, 50:360]      # the plot's 310 columns
    assert (row[:, 0] > 200).all()                                         # every column shows a marked frame


def test_mfcc_frames_longer_than_the_fft_are_cut_as_rfft_cuts_them():
    windows = np.random.default_rng(2).normal(size=(1, 3000))
    frame = 1102
    emphasized = np.concatenate([windows[:, :1], windows[:, 1:] - 0.97 * windows[:, :-1]], axis=1)
    first = emphasized[0, :frame] * np.hamming(frame)
    power = np.abs(np.fft.rfft(first, 512)) ** 2 / 512               # the FFT of the whole frame, cut to 512
    energies = 20 * np.log10(power @ audio._mel_filterbank(40, 512, 44100).T)
    import scipy.fft
    expected = scipy.fft.dct(energies, type=2, norm="ortho")[1:14] * (1 + 11 * np.sin(np.pi * np.arange(13) / 22))
    np.testing.assert_allclose(audio.mfcc_paper(windows, 0.01, 44100)[0, :, 0], expected, rtol=1e-4, atol=1e-3)


# ----------------------------------------------------------------------------- whole clips

def _chirp(seconds: float, sample_rate: int, low: float = 300.0, high: float = 3300.0) -> np.ndarray:
    """A tone whose frequency rises linearly from ``low`` to ``high`` Hz: frequency = time code."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return mf.tone(low + (high - low) * t / seconds, seconds, sample_rate)


def test_paper_clip_windows_span_the_whole_clip_at_the_published_positions(tmp_path):
    import librosa

    seconds, rate = 3.0, 44100
    path = _index_coded_video(tmp_path / "chirp.mp4", 90, _chirp(seconds, 48000), 48000)
    spec = ClipSpec(num_frames=16, image_size=16, framing="whole_frame", frame_sampling="notebook_timing",
                    window_layout="spanning", window_columns=64, sample_rate=rate, features="logmel", n_mels=128)
    arrays = process_clip(ClipSource(str(path)), spec)
    np.testing.assert_array_equal(_shown_indices(arrays.faces), np.arange(0, 48, 3))
    assert arrays.spectrogram.shape == (16, 128, 64) and arrays.spectrogram_half.shape == (8, 128, 64)

    centres = librosa.mel_frequencies(128 + 2, fmin=20.0, fmax=rate / 2)[1:-1]
    length = len(audio.load_audio(str(path), rate).samples)
    for features, count in ((arrays.spectrogram, 16), (arrays.spectrogram_half, 8)):
        heard = centres[features.argmax(axis=1)]                         # [count, 64] Hz of each column
        for window, (start, end) in zip(heard, _spans_as_published(length, count)):
            # column j shows the frame starting at picked_steps(...)[j] * 10 ms into the window
            steps = audio.picked_steps(audio.logmel_steps(end - start, rate), 64)
            times = (start / rate) + steps * 0.010 + 0.0125
            expected = 300.0 + 3000.0 * times / seconds
            assert np.median(np.abs(window - expected)) < 80


def test_paper_clip_mfcc_is_the_mfcc_of_the_peak_normalised_spans(tmp_path):
    sound = _chirp(2.0, 48000) * np.linspace(0.1, 0.4, 96000, dtype=np.float32)
    path = _index_coded_video(tmp_path / "a.mp4", 60, sound, 48000)
    spec = clip_builder.ClipBuilderConfig(name="p", **{**clip_builder.PAPER_FIELDS, "image_size": 16}).clip_spec()
    arrays = process_clip(ClipSource(str(path)), spec)
    samples = audio.peak_normalize(audio.load_audio(str(path), 44100, stereo=True).samples)   # [N, 2]: L = R
    assert np.abs(samples).max() == pytest.approx(1.0) and samples.shape[1] == 2
    for features, count in ((arrays.spectrogram, 16), (arrays.spectrogram_half, 8)):
        windows = audio.cut_spans(samples, np.array(_spans_as_published(len(samples), count)))
        np.testing.assert_allclose(features, audio.mfcc_paper(windows, 0.0001, 44100, columns=310),
                                   rtol=1e-5, atol=1e-4)
    assert arrays.spectrogram.shape == (16, 13, 310) and arrays.spectrogram_half.shape == (8, 13, 310)


def test_clip_samples_cut_the_clip_range_of_the_audio_timeline():
    wave = audio.Waveform(np.arange(100, dtype=np.float32), 10, start_time=2.0)   # t = 2.0 ... 11.9 s
    np.testing.assert_array_equal(audio.clip_samples(wave), np.arange(100))
    np.testing.assert_array_equal(audio.clip_samples(wave, 3.0, 4.0), np.arange(10, 20))
    np.testing.assert_array_equal(audio.clip_samples(wave, 1.0, 2.5), np.arange(0, 5))


def test_a_clip_cut_from_a_longer_video_uses_its_own_range_of_a_separate_wav(tmp_path):
    """IEMOCAP's layout: the utterance [1.0, 2.0) s of a dialog video, its wav starting at 1.0 s."""
    rate = 16000
    sound = _chirp(1.5, rate)                                          # the wav covers video time 1.0-2.5 s
    wav = mf.write_wav(tmp_path / "utt.wav", sound, rate)
    path = _index_coded_video(tmp_path / "dialog.mp4", 90)
    spec = ClipSpec(num_frames=4, image_size=16, framing="whole_frame", frame_sampling="notebook_timing",
                    window_layout="spanning", window_columns=12, sample_rate=rate, features="mfcc", peak_normalize=True,
                    mfcc_stride=0.01)
    source = ClipSource(str(path), str(wav), start=1.0, end=2.0, audio_start=1.0)
    arrays = process_clip(source, spec)
    np.testing.assert_array_equal(_shown_indices(arrays.faces), 30 + np.arange(0, 12, 3))
    samples = audio.peak_normalize(audio.load_audio(str(wav), rate).samples[:rate])       # the wav's first 1.0 s
    for features, count in ((arrays.spectrogram, 4), (arrays.spectrogram_half, 2)):
        windows = audio.cut_spans(samples, np.array(_spans_as_published(len(samples), count)))
        np.testing.assert_allclose(features, audio.mfcc_paper(windows, 0.01, rate, columns=12), rtol=1e-5, atol=1e-4)


def test_paper_layout_needs_a_fixed_width_and_an_even_frame_count():
    with pytest.raises(ValueError, match="window_columns"):
        ClipSpec(window_layout="spanning")
    with pytest.raises(ValueError, match="even num_frames"):
        ClipSpec(window_layout="spanning", window_columns=8, num_frames=5)
    with pytest.raises(ValueError, match="frame_sampling"):
        ClipSpec(frame_sampling="first")


# ----------------------------------------------------------------------------- builder configs

@pytest.mark.parametrize("dataset", ["ravdess", "crema_d", "iemocap"])
def test_every_dataset_has_the_paper_configs(dataset):
    configs = {config.name: config for config in registry.builder_class(dataset).BUILDER_CONFIGS}
    paper, notebook_mfcc_10ms = configs["notebook_mfcc"].clip_spec(), configs["notebook_mfcc_10ms"].clip_spec()
    assert (paper.frame_sampling, paper.frame_stride, paper.window_layout, paper.sample_rate, paper.framing,
            paper.features, paper.mfcc_stride, paper.window_columns) == (
        "notebook_timing", 3, "spanning", 44100, "whole_frame", "mfcc", 0.0001, 310)
    assert notebook_mfcc_10ms.mfcc_stride == 0.01 and notebook_mfcc_10ms.window_layout == "spanning"
    default = configs["logmel"].clip_spec()
    assert (default.frame_sampling, default.window_layout, default.sample_rate) == ("uniform", "aligned", 16000)
    assert (configs["notebook_mfcc"].class_set == "paper7") == (dataset == "ravdess")


def test_prepare_command_names_the_build():
    command = registry.prepare_command("ravdess", "notebook_mfcc", data_dir="/data")
    assert command == "mmae-jax prepare ravdess --config notebook_mfcc --manual-dir RAW_DIR --data-dir /data"
    assert "--manual-dir" not in registry.prepare_command("synthetic", "notebook_mfcc", data_dir="/d")
    with pytest.raises(ValueError, match="no builder config 'nope'"):
        registry.prepare_command("ravdess", "nope")


def test_ravdess_paper_build_stores_both_window_sets_and_seven_classes(tmp_path):
    root = tmp_path / "raw"
    for emotion in (1, 2, 5):
        _index_coded_video(root / "Actor_01" / f"01-01-{emotion:02d}-01-01-01-01.mp4", 50,
                           _chirp(50 / FPS, 48000), 48000)
    config = clip_builder.ClipBuilderConfig(name="paper_tiny", class_set="paper7",
                                            **{**clip_builder.PAPER_FIELDS, "image_size": 16, "window_columns": 20})
    builder = registry.builder_class("ravdess")(data_dir=str(tmp_path / "data"), config=config, num_workers=1)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(root)))
    examples = {ex["clip_id"].decode(): ex for ex in tfds.as_numpy(builder.as_dataset(split="data"))}
    names = builder.info.features["label"].names
    assert len(names) == 7 and "calm" not in names
    assert [names[examples[f"01-01-{e:02d}-01-01-01-01"]["label"]] for e in (1, 2, 5)] == ["neutral", "neutral",
                                                                                             "angry"]
    for example in examples.values():
        assert example["spectrogram"].shape == (16, 13, 20) and example["spectrogram_half"].shape == (8, 13, 20)
        np.testing.assert_array_equal(_shown_indices(example["faces"]), np.arange(0, 48, 3).clip(max=49))
