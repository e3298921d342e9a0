"""The `paper` build's MFCC is the original's: computed on moviepy's 2-channel samples, flattened
to L, R, L, R by the pre-emphasis line. The reference below is the published script's
arithmetic written out here (Preprocessing_*.py: ``normalize_audio``, the window loop and
``MFCC``), not the project's function; `notebook_mfcc_mono` keeps the mono mix."""

from __future__ import annotations

import av
import numpy as np
import pytest
import scipy.fft

import media_factory as mf
from mmae_jax.data_prep import registry
from mmae_jax.data_prep.media import audio

pytestmark = pytest.mark.xdist_group("data_prep_paper")

RATE = 44100


def _two_channel_sound(seconds: float, rate: int) -> np.ndarray:
    """float32 [S, 2]: a rising chirp on the left, a steady 1.7 kHz tone with noise on the right."""
    t = np.arange(int(seconds * rate)) / rate
    left = mf.tone(300 + 2500 * t / seconds, seconds, rate, amplitude=0.6)
    right = mf.tone(1700.0, seconds, rate, amplitude=0.25) + 0.05 * np.random.default_rng(0).normal(size=len(t))
    return np.stack([left, right.astype(np.float32)], axis=1)


def _as_moviepy_reads(path) -> np.ndarray:
    """int16 [N, 2]: ffmpeg's ``-ac 2 -ar 44100 -f s16le`` of the file (what ``wavfile.read`` gets
    back from moviepy's ``write_audiofile``), decoded here with PyAV."""
    resampler = av.AudioResampler(format="s16", layout="stereo", rate=RATE)
    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
        chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(chunks).reshape(-1, 2)


def _original_mfcc(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """[frames, 13]: the published ``MFCC(signal, sample_rate)``, step by step."""
    emphasized = np.append(signal[0], signal[1:] - 0.97 * signal[:-1])        # flattens [n, 2] rows
    frame_length, frame_step = int(round(0.025 * sample_rate)), int(round(0.0001 * sample_rate))
    count = int(np.ceil(float(np.abs(len(emphasized) - frame_length)) / frame_step))
    padded = np.append(emphasized, np.zeros(count * frame_step + frame_length - len(emphasized)))
    starts = np.arange(0, count * frame_step, frame_step)
    frames = padded[starts[:, None] + np.arange(frame_length)[None, :]] * np.hamming(frame_length)
    power = np.absolute(np.fft.rfft(frames, 512)) ** 2 / 512
    mel_top = 2595 * np.log10(1 + (sample_rate / 2) / 700)
    edges = np.floor(513 * (700 * (10 ** (np.linspace(0, mel_top, 42) / 2595) - 1)) / sample_rate)
    bank = np.zeros((40, 257))
    for m in range(1, 41):
        for k in range(int(edges[m - 1]), int(edges[m])):
            bank[m - 1, k] = (k - edges[m - 1]) / (edges[m] - edges[m - 1])
        for k in range(int(edges[m]), int(edges[m + 1])):
            bank[m - 1, k] = (edges[m + 1] - k) / (edges[m + 1] - edges[m])
    energies = power @ bank.T
    energies = 20 * np.log10(np.where(energies == 0, np.finfo(float).eps, energies))
    coefficients = scipy.fft.dct(energies, type=2, axis=1, norm="ortho")[:, 1:14]
    return coefficients * (1 + 11 * np.sin(np.pi * np.arange(13) / 22))


def _original_pictures(data: np.ndarray, windows: int) -> np.ndarray:
    """[windows, 13, 310]: each window's MFCC as the 310-column plot shows it (the columns
    ``audio.picked_steps`` names, tested against matplotlib in test_data_prep_paper.py)."""
    data = data / np.max(np.abs(data))                                         # normalize_audio
    step = int(len(data) / (windows + 1)) - 1
    tx = np.arange(0, len(data), step)
    pictures = []
    for i in range(windows):
        mfcc = _original_mfcc(data[tx[i]:tx[i + 2]], RATE)
        pictures.append(mfcc[audio.picked_steps(len(mfcc), audio.PAPER_WINDOW_COLUMNS)].T)
    return np.stack(pictures)


def _build(config: str, root, data_dir) -> dict:
    from mmae_jax.cli import main

    assert main(["prepare", "ravdess", "--config", config, "--manual-dir", str(root), "--data-dir", str(data_dir),
                 "--workers", "1"]) == 0
    import tensorflow_datasets as tfds
    (example,) = tfds.as_numpy(registry.open_built(data_dir, "ravdess", config).as_dataset(split="data"))
    return example


def test_paper_build_stores_the_mfcc_of_the_interleaved_channels(tmp_path):
    root = tmp_path / "raw"
    clip = mf.write_video(root / "Actor_01" / "01-01-05-01-01-01-01.mp4", mf.plain_frames(48, 32, 32), 30,
                          _two_channel_sound(1.6, 48000), 48000)
    data = _as_moviepy_reads(clip)
    assert np.abs(data[:, 0] - data[:, 1]).max() > 1000                     # the channels differ

    paper = _build("notebook_mfcc", root, tmp_path / "tfds")
    for stored, windows in ((paper["spectrogram"], 16), (paper["spectrogram_half"], 8)):
        np.testing.assert_allclose(stored, _original_pictures(data, windows), rtol=1e-3, atol=0.05)

    # notebook_mfcc_mono: the same arithmetic on one mixed channel (ffmpeg's float mix, not the mean of
    # the 16-bit channels, so a few quiet coefficients differ by a dB or so).
    mono = _build("notebook_mfcc_mono", root, tmp_path / "tfds")
    expected_mono = _original_pictures(data.astype(np.float64).mean(axis=1, keepdims=True), 16)
    assert mono["spectrogram"].shape == paper["spectrogram"].shape == (16, 13, 310)
    assert np.corrcoef(mono["spectrogram"].ravel(), expected_mono.ravel())[0, 1] > 0.999
    assert np.corrcoef(mono["spectrogram"].ravel(), paper["spectrogram"].ravel())[0, 1] < 0.9
