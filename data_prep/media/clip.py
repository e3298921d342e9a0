"""One clip -> the arrays of one example: ``faces`` [T, S, S, 3] uint8 and ``spectrogram``
[T, F, W] float32, window t centred on the moment frame t shows."""

from __future__ import annotations

import dataclasses

import numpy as np

from data_prep.media import audio, faces, video


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """How every clip of a build is turned into arrays (all fields come from the builder config).

    framing: 'face' (detector crop) or 'whole_frame'. features: 'logmel' or 'mfcc'.
    mfcc_stride: MFCC frame stride in seconds (0.01; the original code's 0.0001 on request).
    peak_normalize: divide the clip's waveform by its peak first (the original does).
    window_seconds: length of the audio window cut around every frame time.
    detect_every: the face detector runs on every n-th sampled frame; the smoothed track fills in.
    max_side: frames are decoded at most this large (longer side) before framing.
    """

    num_frames: int = 16
    image_size: int = 224
    framing: str = "face"
    detector: str = "haar"
    face_margin: float = 0.25
    detect_every: int = 4
    max_side: int | None = 640
    sample_rate: int = audio.SAMPLE_RATE
    window_seconds: float = 0.5
    features: str = "logmel"
    n_mels: int = 128
    mfcc_stride: float = 0.01
    peak_normalize: bool = False

    def __post_init__(self):
        if self.framing not in ("face", "whole_frame"):
            raise ValueError(f"framing must be 'face' or 'whole_frame', got {self.framing!r}")
        if self.features not in ("logmel", "mfcc"):
            raise ValueError(f"features must be 'logmel' or 'mfcc', got {self.features!r}")

    def spectrogram_shape(self) -> tuple[int, int, int]:
        """(T, F, W) of the ``spectrogram`` feature."""
        n = audio.window_samples(self.window_seconds, self.sample_rate)
        if self.features == "logmel":
            return self.num_frames, self.n_mels, audio.logmel_steps(n, self.sample_rate)
        return self.num_frames, 13, audio.mfcc_steps(n, self.mfcc_stride, self.sample_rate)

    def faces_shape(self) -> tuple[int, int, int, int]:
        return self.num_frames, self.image_size, self.image_size, 3


@dataclasses.dataclass(frozen=True)
class ClipSource:
    """Where one clip's pixels and sound are.

    video: any container ffmpeg reads. audio: a separate wav, or None for the video's own track.
    start / end: the clip's range in the video's timeline (None: the whole video).
    audio_start: the video time at which the separate audio file begins (None: the video's first
      frame), e.g. the utterance start for an IEMOCAP sentence wav.
    region: 'left' or 'right' keeps that half of every frame (IEMOCAP shows two actors).
    """

    video: str
    audio: str | None = None
    start: float | None = None
    end: float | None = None
    audio_start: float | None = None
    region: str | None = None


@dataclasses.dataclass(frozen=True)
class ClipArrays:
    faces: np.ndarray        # uint8 [T, S, S, 3]
    spectrogram: np.ndarray  # float32 [T, F, W]
    face_found: bool


def _keep_region(frames: np.ndarray, region: str | None) -> np.ndarray:
    if region is None:
        return frames
    half = frames.shape[2] // 2
    return {"left": frames[:, :, :half], "right": frames[:, :, half:]}[region]


def clip_spectrogram(source: ClipSource, sampled: video.SampledFrames, spec: ClipSpec) -> np.ndarray:
    """float32 [T, F, W]: one feature window per sampled frame time."""
    audio_path = source.audio or source.video
    waveform = audio.load_audio(audio_path, spec.sample_rate)
    if spec.peak_normalize:
        waveform = dataclasses.replace(waveform, samples=audio.peak_normalize(waveform.samples))
    times = sampled.times
    if source.audio is not None:  # a separate file: its t=0 is the video time audio_start
        times = times - (sampled.video_start if source.audio_start is None else source.audio_start)
    windows = audio.cut_windows(waveform, times, spec.window_seconds, source=audio_path)
    if spec.features == "logmel":
        return audio.logmel(windows, spec.sample_rate, n_mels=spec.n_mels)
    return audio.mfcc_paper(windows, spec.mfcc_stride, spec.sample_rate)


def process_clip(source: ClipSource, spec: ClipSpec, detector: faces.FaceDetector | None = None) -> ClipArrays:
    """Decode, frame and featurise one clip. Raises media.errors.BadInputError for input it can
    not use."""
    sampled = video.sample_frames(source.video, spec.num_frames, source.start, source.end, spec.max_side)
    frames = _keep_region(sampled.frames, source.region)
    if spec.framing == "whole_frame":
        framed = faces.Framed(faces.whole_frames(frames, spec.image_size), True)
    else:
        framed = faces.face_crops(frames, detector or faces.make_detector(spec.detector), spec.image_size,
                                  spec.face_margin, spec.detect_every)
    return ClipArrays(framed.images, clip_spectrogram(source, sampled, spec), framed.face_found)
