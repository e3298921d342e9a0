"""Write video files with PyAV: the synthetic renderer and the tests' media factory use it.

Containers by suffix: ``.mp4`` H.264 + AAC, ``.flv`` FLV1 + MP3, ``.avi`` MPEG-4 part 2
(DivX-like) + MP3. Frames are uint8 [N, H, W, 3] RGB (H and W even); audio float32 [S] mono
or [S, 2] stereo.

The same frames and audio give the same file, byte for byte (docs/data.md, "Deterministic
builds"): libx264 runs with ``cpu-independent``, which turns off CPU-specific routines such as
its assembly intra-mode search (with them the same frames gave a different bitstream from run
to run on one machine), and on one thread (its output depends on the thread count, which by
default follows the CPU count).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

CODECS = {".mp4": ("libx264", "aac"), ".flv": ("flv", "libmp3lame"), ".avi": ("mpeg4", "libmp3lame")}
X264_OPTIONS = {"preset": "veryfast", "x264-params": "threads=1:cpu-independent=1"}


def write_video(path: str | Path, frames: np.ndarray, fps: int, audio: np.ndarray | None = None,
                sample_rate: int = 48000) -> Path:
    """Write frames (and optional audio, [S] mono or [S, 2] stereo) to ``path``, creating its
    folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    video_codec, audio_codec = CODECS[path.suffix.lower()]
    options = X264_OPTIONS if video_codec == "libx264" else {}
    with av.open(str(path), "w") as container:
        video = container.add_stream(video_codec, rate=fps, options=options)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        layout = "mono" if audio is None or np.ndim(audio) == 1 else "stereo"
        sound = None if audio is None else container.add_stream(audio_codec, rate=sample_rate, layout=layout)
        for image in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode(None))
        if sound is not None:
            _encode_audio(container, sound, np.asarray(audio, np.float32), sample_rate, layout)
    return path


def _encode_audio(container, stream, samples: np.ndarray, sample_rate: int, layout: str) -> None:
    chunk = stream.codec_context.frame_size or 1024
    planes = samples.reshape(len(samples), -1).T                     # [channels, S]
    for offset in range(0, len(samples), chunk):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planes[:, offset:offset + chunk]), format="fltp",
                                           layout=layout)
        frame.sample_rate, frame.pts = sample_rate, offset
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
