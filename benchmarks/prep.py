"""Preprocessing throughput: ours (one pass gives the data for all six fusion strategies) against
a baseline that imitates the original scripts (one pass per strategy: whole-frame resize, JPEG
round trips, MFCC per window drawn with matplotlib and saved as JPEG, one mp4 written).

Input: a generated RAVDESS-like clip (3 s, 1280x720, 30 fps, H.264, 48 kHz AAC) showing a real
face photo (matplotlib's sample 'grace_hopper.jpg') that drifts, so the Haar detector works.
Run on one core for per-core numbers:

    taskset -c 0 .venv/bin/python benchmarks/prep.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import matplotlib
import numpy as np
import threadpoolctl

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import media_factory as mf  # noqa: E402
from common import markdown_table  # noqa: E402

from mmae_jax.data_prep import clip_builder  # noqa: E402
from mmae_jax.data_prep.media import audio, faces  # noqa: E402
from mmae_jax.data_prep.media.clip import ClipSource, ClipSpec, process_clip  # noqa: E402

NUM_STRATEGIES = 6


def make_clip(path: Path) -> Path:
    """3 s, 1280x720, 30 fps H.264 + 48 kHz AAC with a drifting face photo."""
    photo = cv2.cvtColor(cv2.imread(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")),
                         cv2.COLOR_BGR2RGB)
    frames = np.full((90, 720, 1280, 3), 90, np.uint8)
    for index, frame in enumerate(frames):
        x = 380 + 2 * index
        frame[60:660, x:x + 512] = photo
    t = np.arange(3 * 48000) / 48000
    voice = sum(np.sin(2 * np.pi * k * 180 * (1 + 0.2 * t) * t) / k for k in range(1, 6)) * 0.2
    return mf.write_video(path, frames, 30, voice.astype(np.float32), 48000)


# ----------------------------------------------------------------------------- the baseline

def _jpeg_round_trip(image: np.ndarray, folder: Path, name: str) -> np.ndarray:
    path = folder / f"{name}.jpg"
    cv2.imwrite(str(path), image)
    return cv2.imread(str(path))


def _mfcc_image(window: np.ndarray, sample_rate: int, stride: float, folder: Path, name: str) -> np.ndarray:
    """MFCC of one window drawn with matplotlib (viridis), saved as JPEG, read back, resized."""
    coefficients = audio.mfcc_paper(window[None], stride, sample_rate)[0]
    figure = plt.figure(figsize=(2.24, 2.24), dpi=100)
    plt.imshow(coefficients, aspect="auto", origin="lower", cmap="viridis")
    plt.axis("off")
    path = folder / f"{name}.jpg"
    figure.savefig(str(path), format="jpg")
    plt.close(figure)
    return cv2.resize(cv2.imread(str(path)), (224, 224))


def baseline_one_strategy(path: Path, folder: Path, stride: float, frames_per_modality: int = 8) -> None:
    """What the original does for one strategy and one clip."""
    capture = cv2.VideoCapture(str(path))
    decoded = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        decoded.append(frame)
    capture.release()
    index = np.linspace(0, len(decoded) - 1, frames_per_modality).astype(int)
    face_images = [_jpeg_round_trip(cv2.resize(decoded[i], (224, 224)), folder, f"face{k}") for k, i in enumerate(index)]

    waveform = audio.load_audio(str(path), 48000).samples
    waveform = audio.peak_normalize(waveform)
    bounds = np.linspace(0, len(waveform), frames_per_modality + 2).astype(int)
    spectrogram_images = [_mfcc_image(waveform[bounds[i]:bounds[i + 2]], 48000, stride, folder, f"mfcc{i}")
                          for i in range(frames_per_modality)]
    fused = spectrogram_images + face_images  # FSLF
    with av.open(str(folder / "fused.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width = stream.height = 224
        stream.pix_fmt = "yuv420p"
        for image in fused:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))


# ----------------------------------------------------------------------------- ours

def ours(path: Path, spec: ClipSpec, detector, features) -> None:
    features.serialize_example(process_clip(ClipSource(str(path)), spec, detector).stored_values())


def _features(spec: ClipSpec):
    import tensorflow_datasets as tfds

    return tfds.features.FeaturesDict(clip_builder.media_features(spec))


OURS = (("ours: face crop (Haar) + log-mel", ClipSpec()),
        ("ours: whole frame + log-mel", ClipSpec(framing="whole_frame")),
        ("ours: whole frame + MFCC, aligned windows (whole_frame_mfcc config)",
         ClipSpec(framing="whole_frame", features="mfcc", peak_normalize=True)),
        ("ours: the original's timing, 44.1 kHz, MFCC 0.0001 s (paper config)", ClipSpec(**clip_builder.PAPER_FIELDS)),
        ("ours: as notebook_mfcc with MFCC 0.01 s (notebook_mfcc_10ms config)",
         ClipSpec(**{**clip_builder.PAPER_FIELDS, "mfcc_stride": 0.01})))


def colour_scale_check(seconds: float = 3.5) -> None:
    """How far a window's min / max over the 310 stored MFCC columns (the 'notebook_mfcc' config) is from
    those over all its frames at the 0.0001 s stride, as a fraction of the full range, and the
    time of each, on a 180 Hz harmonic voice with a 3 Hz loudness swing."""
    t = np.arange(int(seconds * audio.PAPER_SAMPLE_RATE)) / audio.PAPER_SAMPLE_RATE
    voice = sum(np.sin(2 * np.pi * k * 180 * (1 + 0.2 * t) * t) / k for k in range(1, 6))
    noise = 0.01 * np.random.default_rng(0).normal(size=t.size)
    samples = audio.peak_normalize(voice * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + noise)
    rows = []
    for count in (8, 16):
        windows = audio.cut_spans(samples, audio.paper_window_spans(len(samples), count))
        start = time.perf_counter()
        full = audio.mfcc_paper(windows, 0.0001, audio.PAPER_SAMPLE_RATE)
        middle = time.perf_counter()
        stored = audio.mfcc_paper(windows, 0.0001, audio.PAPER_SAMPLE_RATE, columns=audio.PAPER_WINDOW_COLUMNS)
        end = time.perf_counter()
        span = full.max(axis=(1, 2)) - full.min(axis=(1, 2))
        shifts = np.concatenate([full.max(axis=(1, 2)) - stored.max(axis=(1, 2)),
                                 stored.min(axis=(1, 2)) - full.min(axis=(1, 2))]) / np.tile(span, 2)
        rows.append((count, full.shape[2], f"{shifts.mean():.3f}", f"{shifts.max():.3f}",
                     f"{middle - start:.2f}", f"{end - middle:.3f}"))
    print(markdown_table(("windows", "MFCC frames per window", "mean shift of min/max (of the range)", "max shift",
                          "s, all frames", "s, 310 columns"), rows))


def timed(function, repeats: int) -> float:
    function()  # warm-up (imports, caches)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ours-only", action="store_true", help="skip the (slow) baseline rows")
    parser.add_argument("--colour-scale", action="store_true",
                        help="only compare the paper config's colour scale (310 columns) with all MFCC frames'")
    args = parser.parse_args()
    if args.colour_scale:
        colour_scale_check()
        return
    cv2.setNumThreads(1)
    threadpoolctl.threadpool_limits(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = make_clip(folder / "01-01-05-01-01-01-01.mp4")
        rows = []
        if not args.ours_only:
            for name, stride in (("baseline (MFCC stride 0.01 s)", 0.01),
                                 ("baseline (original 0.0001 s stride)", 0.0001)):
                seconds = timed(lambda: baseline_one_strategy(clip, folder, stride), args.repeats)
                rows.append((name + ", one strategy", seconds))
                rows.append((name + ", six strategies", seconds * NUM_STRATEGIES))
        for name, spec in OURS:
            detector, features = faces.make_detector(spec.detector), _features(spec)
            rows.append((name + ", all six strategies", timed(lambda: ours(clip, spec, detector, features), args.repeats)))
    print(f"clip: 3 s 1280x720 30 fps H.264 + 48 kHz AAC; median of {args.repeats} runs; "
          f"{len(os.sched_getaffinity(0))} core(s) allowed")
    if args.ours_only:
        print(markdown_table(("method", "s per clip", "clips/s"),
                             [(name, f"{seconds:.3f}", f"{1 / seconds:.2f}") for name, seconds in rows]))
        return
    fixed, original = rows[1][1], rows[3][1]
    print(markdown_table(
        ("method", "s per clip", "clips/s", "speed-up vs baseline x6 (0.01 s)", "vs original x6 (0.0001 s)"),
        [(name, f"{seconds:.3f}", f"{1 / seconds:.2f}", f"{fixed / seconds:.1f}x", f"{original / seconds:.1f}x")
         for name, seconds in rows]))

if __name__ == "__main__":
    main()
