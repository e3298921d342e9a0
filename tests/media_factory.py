"""Tiny media files for tests (any stage may import it): videos written with PyAV in the
container the file name asks for (see ``mmae_jax.data_prep.media.encode``), wav files with soundfile,
and simple signals. Frames are uint8 [N, H, W, 3] RGB (H and W even); audio float32 [S] mono.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from mmae_jax.data_prep.media import encode


def write_video(path: str | Path, frames: np.ndarray, fps: int = 30, audio: np.ndarray | None = None,
                sample_rate: int = 48000) -> Path:
    """Write frames [N, H, W, 3] (and optional mono audio [S]) to ``path``; returns the path."""
    return encode.write_video(path, frames, fps, audio, sample_rate)


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int = 16000) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.asarray(audio, np.float32), sample_rate)
    return path


def tone(frequency: float | np.ndarray, duration: float, sample_rate: int = 48000, amplitude: float = 0.5) -> np.ndarray:
    """float32 [duration * sample_rate] sine; ``frequency`` may be an array (one value per sample)."""
    n = int(round(duration * sample_rate))
    frequency = np.broadcast_to(np.asarray(frequency, np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
    return (amplitude * np.sin(phase)).astype(np.float32)


def plain_frames(num: int, height: int = 64, width: int = 64, value: int | np.ndarray = 128) -> np.ndarray:
    """uint8 [num, height, width, 3] frames of one grey level (``value`` may be one level per frame)."""
    levels = np.broadcast_to(np.asarray(value, np.uint8), (num,))
    return np.broadcast_to(levels[:, None, None, None], (num, height, width, 3)).copy()


def drawn_face_frames(num: int, height: int = 64, width: int = 64, seed: int = 0) -> np.ndarray:
    """uint8 [num, height, width, 3]: a light disc with dark eyes and mouth on a dark background,
    drifting a little, so the foreground detector has something to find."""
    import cv2

    rng = np.random.default_rng(seed)
    frames = np.zeros((num, height, width, 3), np.uint8)
    radius = min(height, width) // 4
    for index, image in enumerate(frames):
        cx = width // 2 + int(rng.integers(-2, 3)) + index % 3
        cy = height // 2 + int(rng.integers(-2, 3))
        cv2.circle(image, (cx, cy), radius, (230, 200, 170), -1)
        cv2.circle(image, (cx - radius // 3, cy - radius // 4), max(radius // 6, 1), (20, 20, 20), -1)
        cv2.circle(image, (cx + radius // 3, cy - radius // 4), max(radius // 6, 1), (20, 20, 20), -1)
        cv2.line(image, (cx - radius // 2, cy + radius // 2), (cx + radius // 2, cy + radius // 2), (20, 20, 20), 2)
    return frames
