"""Tiny media files for tests (and for the synthetic builder's look-alikes): videos written with
PyAV in the container the file name asks for, wav files with soundfile, and simple signals.

Containers: ``.mp4`` H.264 + AAC, ``.flv`` FLV1 (+ MP3), ``.avi`` MPEG-4 part 2 (DivX-like) + MP3.
Frames are uint8 [N, H, W, 3] RGB (H and W even); audio is float32 [S] mono in [-1, 1].
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile

_CODECS = {".mp4": ("libx264", "aac"), ".flv": ("flv", "libmp3lame"), ".avi": ("mpeg4", "libmp3lame")}


def write_video(path: str | Path, frames: np.ndarray, fps: int = 30, audio: np.ndarray | None = None,
                sample_rate: int = 48000) -> Path:
    """Write frames [N, H, W, 3] (and optional mono audio [S]) to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    video_codec, audio_codec = _CODECS[path.suffix.lower()]
    with av.open(str(path), "w") as container:
        video_stream = container.add_stream(video_codec, rate=fps)
        video_stream.width, video_stream.height = frames.shape[2], frames.shape[1]
        video_stream.pix_fmt = "yuv420p"
        audio_stream = None
        if audio is not None:
            audio_stream = container.add_stream(audio_codec, rate=sample_rate, layout="mono")
        for image in frames:
            container.mux(video_stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video_stream.encode(None))
        if audio_stream is not None:
            _encode_audio(container, audio_stream, audio, sample_rate)
    return path


def _encode_audio(container, stream, audio: np.ndarray, sample_rate: int) -> None:
    chunk = stream.codec_context.frame_size or 1024
    samples = np.asarray(audio, np.float32)
    for offset in range(0, len(samples), chunk):
        piece = samples[offset:offset + chunk]
        frame = av.AudioFrame.from_ndarray(piece[None, :], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = sample_rate, offset
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


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
