"""One clip -> the arrays of one example: ``faces`` [T, S, S, 3] uint8 and ``spectrogram``
[T, F, W] float32.

Two layouts of frames and windows:
- ``aligned`` (default): T frames at segment centres, window t centred on the moment frame t shows.
- ``spanning`` (the original's timing, with ``frame_sampling='notebook_timing'``): T frames at a fixed
  stride from the clip's first frame, and two sets of overlapping windows spanning the whole
  clip, independent of the frames: T windows (``spectrogram``, for the strategies that read T
  frames of each modality: CFAS, SFAS, audio only) and T / 2 windows (``spectrogram_half``, for
  those that read T / 2 of each: FSLF, FFLS, OFOS, RFAS; they take the faces at even positions,
  i.e. the frames at twice the stride).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mmae_jax.data_prep.media import audio, faces, video


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """How every clip of a build is turned into arrays (all fields come from the builder config).

    framing: 'face' (detector crop) or 'whole_frame'. features: 'logmel' or 'mfcc'.
    frame_sampling: 'uniform' (segment centres) or 'notebook_timing' (every ``frame_stride``-th
      frame from the clip's first, see ``video.frames_at_stride``).
    window_layout: 'aligned' (window t centred on frame t's time, ``window_seconds`` long) or
      'spanning' (the original's overlapping windows over the whole clip, see the module doc).
    window_columns: 0 keeps every feature time step; > 0 keeps that many, picked nearest at even
      spacing (required by the 'spanning' layout, whose windows' lengths depend on the clip's).
    sample_rate: the rate audio is decoded at (16 kHz; the original read 44.1 kHz).
    audio_channels: 'mono' (a mono mix) or 'interleaved' (the original's MFCC input: the track
      decoded to 2 channels of 16-bit samples, windows placed on the sample rows, each channel
      pre-emphasised, then flattened to L, R, L, R, ... at the nominal rate; 'spanning' layout and
      MFCC features only; see media.audio).
    mfcc_stride: MFCC frame stride in seconds (0.01, or the original code's 0.0001).
    peak_normalize: divide the clip's waveform by its peak first (the original does).
    window_seconds: length of the audio window cut around every frame time ('aligned' only).
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
    frame_sampling: str = "uniform"
    frame_stride: int = 3
    window_layout: str = "aligned"
    window_columns: int = 0
    sample_rate: int = audio.SAMPLE_RATE
    audio_channels: str = "mono"
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
        if self.frame_sampling not in ("uniform", "notebook_timing"):
            raise ValueError(f"frame_sampling must be 'uniform' or 'notebook_timing', got {self.frame_sampling!r}")
        if self.window_layout not in ("aligned", "spanning"):
            raise ValueError(f"window_layout must be 'aligned' or 'spanning', got {self.window_layout!r}")
        if self.audio_channels not in ("mono", "interleaved"):
            raise ValueError(f"audio_channels must be 'mono' or 'interleaved', got {self.audio_channels!r}")
        if self.audio_channels == "interleaved" and (self.window_layout, self.features) != ("spanning", "mfcc"):
            raise ValueError("audio_channels='interleaved' is the original's MFCC input; it needs "
                             f"window_layout='spanning' and features='mfcc', got {self.window_layout!r}, "
                             f"{self.features!r}")
        if self.window_layout == "spanning" and (self.window_columns <= 0 or self.num_frames % 2):
            raise ValueError("window_layout='spanning' needs window_columns > 0 (its windows' lengths vary "
                             f"by clip) and an even num_frames; got {self.window_columns}, {self.num_frames}")

    def feature_bins(self) -> int:
        """F: mel bins or MFCC coefficients."""
        return self.n_mels if self.features == "logmel" else 13

    def spectrogram_shape(self) -> tuple[int, int, int]:
        """(T, F, W) of the ``spectrogram`` feature."""
        if self.window_columns > 0:
            return self.num_frames, self.feature_bins(), self.window_columns
        n = audio.window_samples(self.window_seconds, self.sample_rate)
        if self.features == "logmel":
            return self.num_frames, self.n_mels, audio.logmel_steps(n, self.sample_rate)
        return self.num_frames, 13, audio.mfcc_steps(n, self.mfcc_stride, self.sample_rate)

    def spectrogram_half_shape(self) -> tuple[int, int, int] | None:
        """(T / 2, F, W) of the ``spectrogram_half`` feature ('spanning' layout), else None."""
        if self.window_layout != "spanning":
            return None
        return self.num_frames // 2, self.feature_bins(), self.window_columns

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
    spectrogram_half: np.ndarray | None = None  # float32 [T / 2, F, W], 'spanning' layout only

    def stored_values(self) -> dict[str, np.ndarray]:
        """The example's media features by name: faces, spectrogram (, spectrogram_half)."""
        values = {"faces": self.faces, "spectrogram": self.spectrogram}
        if self.spectrogram_half is not None:
            values["spectrogram_half"] = self.spectrogram_half
        return values


@dataclasses.dataclass(frozen=True)
class ClipJob:
    """One clip to write: where it is and the metadata its example carries."""

    source: ClipSource
    label: str
    speaker: int
    clip_id: str


def clip_example(job: ClipJob, result: ClipArrays) -> dict:
    """The stored example of one processed clip; the in-process and the Beam build both write
    exactly this. Its fields (names are the contract with the input pipeline):

      faces        uint8   [T, S, S, 3]  JPEG-encoded frames (tfds.features.Video)
      spectrogram  float32 [T, F, W]     window t centred on frame t's time ('aligned' layout),
                                         or the original's T windows over the whole clip ('spanning')
      spectrogram_half float32 [T/2, F, W]  'spanning' layout only: its T / 2 windows (module doc)
      label        ClassLabel            emotion names of the config's class set
      speaker      int32                 actor / speaker id (see protocols for the encodings)
      clip_id      string                the source file's stem, or the IEMOCAP utterance id
    """
    return {**result.stored_values(), "label": job.label, "speaker": job.speaker, "clip_id": job.clip_id}


def _keep_region(frames: np.ndarray, region: str | None) -> np.ndarray:
    if region is None:
        return frames
    half = frames.shape[2] // 2
    return {"left": frames[:, :, :half], "right": frames[:, :, half:]}[region]


def window_features(windows: np.ndarray, spec: ClipSpec) -> np.ndarray:
    """float32 [T, F, W] features of windows [T, N]."""
    if spec.features == "logmel":
        return audio.logmel(windows, spec.sample_rate, n_mels=spec.n_mels, columns=spec.window_columns)
    return audio.mfcc_paper(windows, spec.mfcc_stride, spec.sample_rate, columns=spec.window_columns)


def _load_waveform(source: ClipSource, spec: ClipSpec) -> audio.Waveform:
    return audio.load_audio(source.audio or source.video, spec.sample_rate,
                            stereo=spec.audio_channels == "interleaved")


def _audio_offset(source: ClipSource, sampled: video.SampledFrames) -> float:
    """Video time of the audio timeline's t=0: a separate file starts at ``audio_start`` (or with
    the video's first frame); a container's own track shares the video's timeline."""
    if source.audio is None:
        return 0.0
    return sampled.video_start if source.audio_start is None else source.audio_start


def clip_spectrogram(source: ClipSource, sampled: video.SampledFrames, spec: ClipSpec) -> np.ndarray:
    """float32 [T, F, W]: one feature window per sampled frame time ('aligned' layout)."""
    waveform = _load_waveform(source, spec)
    if spec.peak_normalize:
        waveform = dataclasses.replace(waveform, samples=audio.peak_normalize(waveform.samples))
    windows = audio.cut_windows(waveform, sampled.times - _audio_offset(source, sampled), spec.window_seconds,
                                source=source.audio or source.video)
    return window_features(windows, spec)


def paper_spectrograms(source: ClipSource, sampled: video.SampledFrames, spec: ClipSpec
                       ) -> tuple[np.ndarray, np.ndarray]:
    """float32 [T, F, W] and [T / 2, F, W] ('spanning' layout): the clip's audio (its ``[start, end)``
    range, the whole track when unset), peak-normalised if asked, cut into T and T / 2 windows by
    ``audio.paper_window_spans`` (over sample rows: with 'interleaved' channels a row holds L and R)."""
    waveform = _load_waveform(source, spec)
    offset = _audio_offset(source, sampled)
    samples = audio.clip_samples(waveform, None if source.start is None else source.start - offset,
                                 None if source.end is None else source.end - offset)
    if spec.peak_normalize:
        samples = audio.peak_normalize(samples)
    name = source.audio or source.video
    return tuple(window_features(audio.cut_spans(samples, audio.paper_window_spans(len(samples), count, name)), spec)
                 for count in (spec.num_frames, spec.num_frames // 2))


def sample_clip_frames(source: ClipSource, spec: ClipSpec) -> video.SampledFrames:
    """The T frames of the clip under ``spec.frame_sampling``."""
    if spec.frame_sampling == "notebook_timing":
        return video.frames_at_stride(source.video, spec.num_frames, spec.frame_stride, source.start, source.end,
                                      spec.max_side)
    return video.sample_frames(source.video, spec.num_frames, source.start, source.end, spec.max_side)


def process_clip(source: ClipSource, spec: ClipSpec, detector: faces.FaceDetector | None = None) -> ClipArrays:
    """Decode, frame and featurise one clip. Raises media.errors.BadInputError for input it can
    not use."""
    sampled = sample_clip_frames(source, spec)
    frames = _keep_region(sampled.frames, source.region)
    if spec.framing == "whole_frame":
        framed = faces.Framed(faces.whole_frames(frames, spec.image_size), True)
    else:
        framed = faces.face_crops(frames, detector or faces.make_detector(spec.detector), spec.image_size,
                                  spec.face_margin, spec.detect_every)
    if spec.window_layout == "spanning":
        full, half = paper_spectrograms(source, sampled, spec)
        return ClipArrays(framed.images, full, framed.face_found, half)
    return ClipArrays(framed.images, clip_spectrogram(source, sampled, spec), framed.face_found)
