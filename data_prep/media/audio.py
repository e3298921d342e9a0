"""Audio: mono load (16 kHz by default) or the original's 2-channel read, windows, and
per-window features.

Windows are ``[T, N]`` arrays, cut either around the sampled frame times (``cut_windows``,
centre sample = frame time) or as the original's overlapping spans over the whole clip
(``paper_window_spans``). Features turn them into a spectrogram ``[T, F, W]`` (F bins by W time
steps) in one vectorised call, optionally keeping only W = ``columns`` evenly picked time steps:

- ``logmel`` (default; the HiCMAE-style front end): 128 mel bins, 25 ms Hann window (zero-padded
  to a 512-point FFT), 10 ms hop, ``log(power + 1e-6)``.
- ``mfcc``: the original MultiMAE-DER recipe: pre-emphasis 0.97, 25 ms Hamming frames, NFFT 512,
  40 mel filters, ``20 log10`` filter-bank energies, DCT coefficients 2-14 (13 of them),
  sinusoidal lifter 22. The frame stride is a parameter: 0.01 s, or the original code's
  0.0001 s (a typo that gives ~100x more frames) as an explicit option. Windows of 2-channel
  samples ``[T, N, 2]`` are what the original's MFCC was given: moviepy asks ffmpeg for 2
  channels (``-ac 2``: a mono source duplicated) of 16-bit samples, so ``wavfile.read`` returns
  ``[N, 2]``; its pre-emphasis line works on those rows, then ``np.append`` flattens them, so
  the MFCC runs on L, R, L, R, ... (2N samples) at the nominal rate.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import av
import librosa
import numpy as np
import scipy.fft

from mmae_jax.data_prep.media.errors import BadInputError

SAMPLE_RATE = 16000
PAPER_SAMPLE_RATE = 44100  # moviepy's default read rate, what the original decoded at
# The original draws each MFCC with matplotlib on a 4x4-inch figure at 100 dpi; the axes cover
# 0.775 of its 400 px width, so the plot shows 310 time columns (nearest neighbour).
PAPER_WINDOW_COLUMNS = 310
WAV_SUFFIXES = (".wav", ".flac")


@dataclasses.dataclass(frozen=True)
class Waveform:
    """Samples float32 [N] (mono) or [N, 2] (``load_audio(..., stereo=True)``) at ``sample_rate``;
    sample 0 is at ``start_time`` seconds in the source file's timeline."""

    samples: np.ndarray
    sample_rate: int
    start_time: float

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def _load_wav(path: str, sample_rate: int) -> Waveform:
    try:
        samples, _ = librosa.load(path, sr=sample_rate, mono=True)
    except Exception as err:  # soundfile and audioread raise many unrelated types
        raise BadInputError(path, "unreadable_audio", f"can not read the audio file: {err}") from err
    return Waveform(samples.astype(np.float32), sample_rate, 0.0)


def _load_from_container(path: str, sample_rate: int, stereo: bool = False) -> Waveform:
    """float32 mono samples, or with ``stereo`` 16-bit stereo ones (ffmpeg's ``-ac 2 -f s16le``,
    what moviepy reads) scaled by 1 / 32768, as [N, 2]."""
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        raise BadInputError(path, "corrupt", f"can not open the file: {err}") from err
    with container:
        if not container.streams.audio:
            raise BadInputError(path, "no_audio", "the file has no audio track")
        resampler = av.AudioResampler(format="s16" if stereo else "flt", layout="stereo" if stereo else "mono",
                                      rate=sample_rate)
        chunks, start_time = [], None
        try:
            for frame in container.decode(container.streams.audio[0]):
                if start_time is None:
                    start_time = float(frame.time or 0.0)
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
        except av.error.FFmpegError as err:
            raise BadInputError(path, "corrupt", f"audio decoding failed: {err}") from err
    if not chunks:
        raise BadInputError(path, "no_audio", "the audio track holds no samples")
    samples = np.concatenate(chunks)
    if stereo:                                  # packed s16: L, R, L, R, ...
        samples = samples.reshape(-1, 2) / np.float32(32768)
    return Waveform(samples.astype(np.float32), sample_rate, start_time)


def load_audio(path: str, sample_rate: int = SAMPLE_RATE, stereo: bool = False) -> Waveform:
    """Mono waveform at ``sample_rate``: librosa for wav/flac files, PyAV for anything else
    (the audio track of a video container). ``stereo``: the original's read of any file, 2
    channels of 16-bit samples from ffmpeg (PyAV), ``samples`` [N, 2]."""
    if stereo:
        return _load_from_container(path, sample_rate, stereo=True)
    if Path(path).suffix.lower() in WAV_SUFFIXES:
        return _load_wav(path, sample_rate)
    return _load_from_container(path, sample_rate)


def window_samples(window_seconds: float, sample_rate: int = SAMPLE_RATE) -> int:
    return int(round(window_seconds * sample_rate))


def cut_windows(waveform: Waveform, times: np.ndarray, window_seconds: float, source: str = "") -> np.ndarray:
    """float32 [T, N]: window t is centred on ``times[t]`` (seconds, in the waveform's timeline);
    the parts before the first or after the last sample are zeros.

    Raises BadInputError when a centre lies more than half a window outside the audio (the audio
    is much shorter than the video, so the window would be mostly silence by accident).
    """
    n = window_samples(window_seconds, waveform.sample_rate)
    centres = np.round((np.asarray(times) - waveform.start_time) * waveform.sample_rate).astype(np.int64)
    length = len(waveform.samples)
    if centres.min() < -n // 2 or centres.max() > length + n // 2:
        raise BadInputError(source, "audio_too_short",
                            f"audio covers [{waveform.start_time:.2f}, {waveform.start_time + waveform.duration:.2f}) s "
                            f"but frames are at [{times.min():.2f}, {times.max():.2f}] s")
    padded = np.pad(waveform.samples, (n, n))
    index = centres[:, None] - n // 2 + np.arange(n)[None, :] + n
    return padded[np.clip(index, 0, len(padded) - 1)]


def clip_samples(waveform: Waveform, start: float | None = None, end: float | None = None) -> np.ndarray:
    """float32 [N]: the samples from ``start`` to ``end`` (seconds in the waveform's timeline;
    None: its first / last sample)."""
    first = 0 if start is None else max(int(round((start - waveform.start_time) * waveform.sample_rate)), 0)
    last = len(waveform.samples) if end is None else int(round((end - waveform.start_time) * waveform.sample_rate))
    return waveform.samples[first:max(last, first)]


def paper_window_spans(length: int, count: int, source: str = "") -> np.ndarray:
    """int64 [count, 2] sample spans ``[start, end)`` of the original's ``count`` overlapping
    windows over a clip of ``length`` samples: ``step = length // (count + 1) - 1``, window i is
    ``[i * step, (i + 2) * step)`` (2 / (count + 1) of the clip long, hop 1 / (count + 1)).

    Raises BadInputError when the clip is too short for a step of one sample.
    """
    step = length // (count + 1) - 1
    if step < 1:
        raise BadInputError(source, "audio_too_short", f"{length} samples can not make {count} windows")
    starts = step * np.arange(count, dtype=np.int64)
    return np.stack([starts, starts + 2 * step], axis=1)


def cut_spans(samples: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """float32 [count, L] (or [count, L, C] of samples [N, C]): ``samples[start:end]`` of every
    span (all spans L samples long)."""
    length = int(spans[0, 1] - spans[0, 0])
    return samples[spans[:, :1] + np.arange(length)[None, :]]


def peak_normalize(samples: np.ndarray) -> np.ndarray:
    """Divide by the largest absolute sample (as the original does per clip); silence stays silence."""
    peak = np.abs(samples).max(initial=0.0)
    return samples / peak if peak > 0 else samples


# ----------------------------------------------------------------------------- log-mel

LOGMEL_WIN_SECONDS, LOGMEL_HOP_SECONDS, LOGMEL_NFFT = 0.025, 0.010, 512


def picked_steps(steps: int, columns: int = 0) -> np.ndarray:
    """int [W] indices of the analysis frames kept: all ``steps`` of them (``columns`` 0), or
    ``columns`` of them picked nearest at equal spacing: the frame under the centre of pixel j,
    ``(j + 0.5) * steps / columns``, the left one when the centre is on a frame edge. That is
    what matplotlib's ``interpolation="nearest"`` shows when it draws a wide MFCC into a plot
    ``columns`` pixels wide (tested against it)."""
    if columns <= 0:
        return np.arange(steps)
    return ((2 * np.arange(columns, dtype=np.int64) + 1) * steps - 1) // (2 * columns)


def frame_signal(windows: np.ndarray, frame_length: int, step: int, steps: int,
                 columns: int = 0, keep: int | None = None) -> np.ndarray:
    """[T, W, keep] frames of each window ([T, N]), zero-padded at the end if needed: frame j
    starts at ``step * picked_steps(steps, columns)[j]``; only its first ``keep`` samples
    (default all ``frame_length``) are gathered."""
    needed = (steps - 1) * step + frame_length
    padded = np.pad(windows, ((0, 0), (0, max(needed - windows.shape[1], 0))))
    keep = frame_length if keep is None else min(keep, frame_length)
    index = np.arange(keep)[None, :] + step * picked_steps(steps, columns)[:, None]
    return padded[:, index]


def logmel_steps(window_length: int, sample_rate: int = SAMPLE_RATE) -> int:
    """Number of log-mel frames W for a window of ``window_length`` samples (no centring)."""
    win = window_samples(LOGMEL_WIN_SECONDS, sample_rate)
    return 1 + (window_length - win) // window_samples(LOGMEL_HOP_SECONDS, sample_rate)


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_mels: int) -> np.ndarray:
    return librosa.filters.mel(sr=sample_rate, n_fft=LOGMEL_NFFT, n_mels=n_mels, fmin=20.0).astype(np.float32)


def logmel(windows: np.ndarray, sample_rate: int = SAMPLE_RATE, n_mels: int = 128, columns: int = 0) -> np.ndarray:
    """float32 [T, n_mels, W] log mel power of each window ([T, N]): 25 ms Hann frames zero-padded
    to a 512-point FFT, 10 ms hop, slaney mel filters from 20 Hz, ``log(power + 1e-6)``.
    ``columns`` > 0 keeps that many frames (W = columns, see ``picked_steps``)."""
    win = window_samples(LOGMEL_WIN_SECONDS, sample_rate)
    keep = min(win, LOGMEL_NFFT)  # rfft(x, n) reads only the first n samples of a longer frame
    frames = frame_signal(windows, win, window_samples(LOGMEL_HOP_SECONDS, sample_rate),
                          logmel_steps(windows.shape[1], sample_rate), columns, keep)
    power = np.abs(np.fft.rfft(frames * np.hanning(win + 1)[:keep], LOGMEL_NFFT)) ** 2   # [T, W, 257]
    mel = power.astype(np.float32) @ _mel_basis(sample_rate, n_mels).T                # [T, W, n_mels]
    return np.log(np.transpose(mel, (0, 2, 1)) + 1e-6).astype(np.float32)


# ----------------------------------------------------------------------------- MFCC (paper)

def _mel_filterbank(n_filters: int, nfft: int, sample_rate: int) -> np.ndarray:
    """[n_filters, nfft // 2 + 1] triangular filters on FFT bins, as in the original recipe."""
    high_mel = 2595 * np.log10(1 + (sample_rate / 2) / 700)
    hz_points = 700 * (10 ** (np.linspace(0, high_mel, n_filters + 2) / 2595) - 1)
    bins = np.floor((nfft + 1) * hz_points / sample_rate).astype(int)
    bank = np.zeros((n_filters, nfft // 2 + 1))
    for m in range(1, n_filters + 1):
        left, centre, right = bins[m - 1], bins[m], bins[m + 1]
        bank[m - 1, left:centre] = (np.arange(left, centre) - left) / max(centre - left, 1)
        bank[m - 1, centre:right] = (right - np.arange(centre, right)) / max(right - centre, 1)
    return bank


def mfcc_steps(window_length: int, stride_seconds: float, sample_rate: int = SAMPLE_RATE,
               frame_seconds: float = 0.025) -> int:
    """Number of MFCC frames W for a window of ``window_length`` samples."""
    frame_length = int(round(frame_seconds * sample_rate))
    step = max(int(round(stride_seconds * sample_rate)), 1)
    return int(np.ceil(abs(window_length - frame_length) / step))


def mfcc_paper(windows: np.ndarray, stride_seconds: float = 0.01, sample_rate: int = SAMPLE_RATE,
               frame_seconds: float = 0.025, nfft: int = 512, n_filters: int = 40,
               num_ceps: int = 13, lifter: int = 22, columns: int = 0) -> np.ndarray:
    """float32 [T, num_ceps, W] MFCCs of each window ([T, N]) with the original's parameters.

    Windows of 2-channel samples ([T, N, 2]) are pre-emphasised per channel and then
    interleaved to [T, 2N] (L, R, L, R, ...) at the same ``sample_rate``, as the original's
    ``np.append`` does to ``wavfile.read``'s [N, 2] (see the module doc).

    ``columns`` > 0 computes only the frames a ``columns``-pixel nearest-neighbour plot shows
    (W = columns, see ``picked_steps``); every frame's MFCC is computed exactly as without it.
    A frame longer than ``nfft`` (25 ms at 44.1 kHz is 1,102 samples) enters the FFT cut to
    its first ``nfft`` samples, as ``np.fft.rfft(frame, nfft)`` does in the original.
    """
    frame_length = int(round(frame_seconds * sample_rate))
    step = max(int(round(stride_seconds * sample_rate)), 1)
    keep = min(frame_length, nfft)
    emphasized = np.concatenate([windows[:, :1], windows[:, 1:] - 0.97 * windows[:, :-1]], axis=1)
    emphasized = emphasized.reshape(len(emphasized), -1)                       # [T, N * channels]
    steps = mfcc_steps(emphasized.shape[1], stride_seconds, sample_rate, frame_seconds)
    frames = frame_signal(emphasized, frame_length, step, steps, columns, keep) * np.hamming(frame_length)[:keep]
    power = np.abs(np.fft.rfft(frames, nfft)) ** 2 / nfft                      # [T, W, nfft/2+1]
    energies = power @ _mel_filterbank(n_filters, nfft, sample_rate).T       # [T, W, n_filters]
    energies = 20 * np.log10(np.where(energies == 0, np.finfo(float).eps, energies))
    coefficients = scipy.fft.dct(energies, type=2, axis=-1, norm="ortho")[..., 1:num_ceps + 1]
    coefficients *= 1 + (lifter / 2) * np.sin(np.pi * np.arange(num_ceps) / lifter)
    return np.transpose(coefficients, (0, 2, 1)).astype(np.float32)
