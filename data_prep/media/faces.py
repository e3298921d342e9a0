"""Framing: turn decoded frames [T, H, W, 3] into square images [T, S, S, 3].

``face`` framing runs a detector on the frames, keeps the largest box per frame, fills frames
without a detection from their neighbours, smooths the box over time and cuts a square with a
margin around it. When no frame of the clip has a face, it falls back to a centre crop and says
so (the builder counts it). ``whole_frame`` framing resizes the whole frame, as the original did.

Detectors are plain callables ``frame [H, W, 3] uint8 -> boxes int [N, 4] (x, y, w, h)``,
registered by name so a builder config can pick one (``register_detector`` adds another).
The box kept from a frame does not depend on the order a detector lists its boxes in (OpenCV's
threads change that order): ties in size go to the top-most, then left-most box.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Protocol

import cv2
import numpy as np


class FaceDetector(Protocol):
    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """frame uint8 [H, W, 3] RGB -> boxes int [N, 4] as (x, y, w, h) in frame pixels."""


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade, run on a grey copy scaled to ``detect_width`` pixels.
    Faces smaller than ``min_size_fraction`` of the frame's short side are ignored (talking-head
    datasets film faces large; skipping tiny scales is most of the speed)."""

    def __init__(self, detect_width: int = 320, min_size_fraction: float = 0.15, scale_factor: float = 1.15,
                 cascade: str = "haarcascade_frontalface_default.xml"):
        self.detect_width = detect_width
        self.min_size_fraction = min_size_fraction
        self.scale_factor = scale_factor
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + cascade)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        scale = min(1.0, self.detect_width / frame.shape[1])
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        min_side = max(int(self.min_size_fraction * min(grey.shape)), 16)
        boxes = self.cascade.detectMultiScale(grey, scaleFactor=self.scale_factor, minNeighbors=4, minSize=(min_side, min_side))
        return np.round(np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / scale).astype(np.int64)


class ForegroundFaceDetector:
    """The largest blob that differs from the border colour: finds a drawn face on a plain
    background (the synthetic data), where a Haar cascade trained on photographs does not fire."""

    def __init__(self, threshold: float = 40.0, min_area_fraction: float = 0.02):
        self.threshold = threshold
        self.min_area_fraction = min_area_fraction

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        border = np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]]).astype(np.float32)
        distance = np.abs(frame.astype(np.float32) - np.median(border, axis=0)).sum(axis=-1)
        mask = (distance > self.threshold).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        if count <= 1 or areas.max() < self.min_area_fraction * mask.size:
            return np.zeros((0, 4), np.int64)
        return stats[1 + largest(stats[1:, :4], areas), :4][None].astype(np.int64)


_DETECTORS: dict[str, Callable[[], FaceDetector]] = {
    "haar": HaarFaceDetector,
    "foreground": ForegroundFaceDetector,
}


def register_detector(name: str, factory: Callable[[], FaceDetector]) -> None:
    """Make ``factory()`` available as the detector ``name`` in builder configs."""
    _DETECTORS[name] = factory


def make_detector(name: str) -> FaceDetector:
    if name not in _DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; known: {sorted(_DETECTORS)}")
    return _DETECTORS[name]()


@dataclasses.dataclass(frozen=True)
class Framed:
    """images: uint8 [T, S, S, 3]; face_found: False when a face crop fell back to the centre."""

    images: np.ndarray
    face_found: bool


def largest(boxes: np.ndarray, sizes: np.ndarray) -> int:
    """Index of the largest of ``sizes`` [N] among ``boxes`` int [N, 4] (x, y, w, h), ties broken
    by the smallest y, then x, then w: the same box whatever order the boxes come in."""
    return int(np.lexsort((boxes[:, 2], boxes[:, 0], boxes[:, 1], -np.asarray(sizes)))[0])


def _largest_boxes(frames: np.ndarray, detector: FaceDetector, detect_every: int) -> dict[int, np.ndarray]:
    """frame index -> (centre x, centre y, side) of the largest detection, for detected frames."""
    found = {}
    for index in range(0, len(frames), detect_every):
        boxes = detector(frames[index])
        if len(boxes):
            x, y, w, h = boxes[largest(boxes, boxes[:, 2] * boxes[:, 3])]
            found[index] = np.array([x + w / 2, y + h / 2, max(w, h)], np.float64)
    return found


def smooth_track(found: dict[int, np.ndarray], num_frames: int, window: int = 5) -> np.ndarray:
    """[T, 3] boxes for every frame: linear interpolation between detections, then a centred
    moving average of ``window`` frames (edges repeat the end values)."""
    known = np.array(sorted(found))
    values = np.stack([found[i] for i in known])
    track = np.stack([np.interp(np.arange(num_frames), known, values[:, k]) for k in range(3)], axis=1)
    half = window // 2
    padded = np.pad(track, ((half, half), (0, 0)), mode="edge")
    kernel = np.ones(window) / window
    return np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(3)], axis=1)


def square_crop(frame: np.ndarray, centre_x: float, centre_y: float, side: float, size: int) -> np.ndarray:
    """uint8 [size, size, 3]: the square of ``side`` pixels centred at (x, y), edges replicated."""
    scale = size / side
    matrix = np.array([[scale, 0, size / 2 - centre_x * scale], [0, scale, size / 2 - centre_y * scale]])
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(frame, matrix, (size, size), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)


def whole_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 [T, size, size, 3]: every frame resized (aspect ratio not kept, as in the original)."""
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])


def face_crops(frames: np.ndarray, detector: FaceDetector, size: int, margin: float = 0.25,
               detect_every: int = 4) -> Framed:
    """Square face crops [T, size, size, 3] from frames [T, H, W, 3]; ``margin`` widens the box
    by that fraction of its side on each side; the detector runs on every ``detect_every``-th
    frame and the track fills the rest. No detection at all -> centre crops."""
    height, width = frames.shape[1:3]
    found = _largest_boxes(frames, detector, detect_every)
    if not found:
        side = float(min(height, width))
        track = np.tile([width / 2, height / 2, side / (1 + 2 * margin)], (len(frames), 1))
    else:
        track = smooth_track(found, len(frames))
    sides = track[:, 2] * (1 + 2 * margin)
    images = np.stack([square_crop(f, x, y, s, size) for f, (x, y, _), s in zip(frames, track, sides)])
    return Framed(images, bool(found))
