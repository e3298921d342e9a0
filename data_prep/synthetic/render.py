"""Render a RAVDESS-layout folder of real mp4 files (H.264 video + AAC audio, through PyAV).

Class = drawn facial expression x pitch contour (``protocols.SYNTHETIC_CLASSES``, RAVDESS
emotion code = class index + 1), so faces alone can reach at most 50 % (each expression is
shared by 2 classes) and the voice alone at most 25 % (each contour by 4 classes).
Nuisance per actor: face colour, size and position, background, base pitch, noise level; per
clip: drift, jitter, pitch jitter and noise. The cues are drawn large and thick: thin strokes
did not generalise across actors (mission.md, feasibility notes).

``RenderSpec.style``: ``independent`` (the default, above) or ``coupled``, a setting where MAE
pre-training has something to learn (``render_coupled_clip``): each modality alone carries the
whole class, as emotion shows in both voice and face (the face also shows the contour as a head
tilt, the voice also shows the expression as syllable rate and brightness), the cues cover many
patches (eyes, brows, mouth, tilt; stripes over the whole spectrogram) and start at a shared
onset, and nuisance the class must be told apart from (onset time, head roll, face colour and
background per clip, a neutral face before the onset) breaks the fixed-drawing-at-a-fixed-place
that makes the independent style linearly separable from pixels.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from mmae_jax.data_prep import parallel, protocols
from mmae_jax.data_prep.media import encode

EXPRESSIONS = ("smile", "frown", "open", "flat")
CONTOURS = ("rising", "falling")
STYLES = ("independent", "coupled")


@dataclasses.dataclass(frozen=True)
class RenderSpec:
    """num_actors actors x 8 classes x repetitions clips of ``seconds`` at ``fps``, frames
    ``frame_size`` pixels square, audio at ``sample_rate``."""

    num_actors: int = 30
    repetitions: int = 2
    seconds: float = 2.0
    fps: int = 12
    frame_size: int = 96
    sample_rate: int = 16000
    seed: int = 0
    style: str = "independent"

    def __post_init__(self):
        if self.style not in STYLES:
            raise ValueError(f"error: render style {self.style!r} is not one of {STYLES}")


@dataclasses.dataclass(frozen=True)
class Actor:
    face_colour: tuple[int, int, int]
    background: tuple[int, int, int]
    radius_fraction: float
    offset: tuple[float, float]
    base_pitch: float
    noise: float


def make_actor(actor: int, seed: int) -> Actor:
    rng = np.random.default_rng([seed, actor])
    return Actor(face_colour=tuple(int(v) for v in rng.integers(150, 256, 3)),
                 background=tuple(int(v) for v in rng.integers(0, 60, 3)),
                 radius_fraction=float(rng.uniform(0.30, 0.36)),
                 offset=(float(rng.uniform(-0.08, 0.08)), float(rng.uniform(-0.08, 0.08))),
                 base_pitch=float(rng.uniform(110, 260)), noise=float(rng.uniform(0.01, 0.05)))


def draw_eyes(image: np.ndarray, style: str, centres: list[tuple[int, int]], eye_r: int, thick: int,
              ink: tuple[int, int, int]) -> None:
    """Eyes at ``centres``: ``dots`` (filled), ``arcs`` (happy, closed upward arcs), ``small``
    (half-size dots), ``wide`` (a white ring with a pupil) or ``slits`` (horizontal lines)."""
    for ex, ey in centres:
        if style == "dots":
            cv2.circle(image, (ex, ey), eye_r, ink, -1)
        elif style == "arcs":
            cv2.ellipse(image, (ex, ey + eye_r), (2 * eye_r, 2 * eye_r), 0, 180, 360, ink, thick)
        elif style == "small":
            cv2.circle(image, (ex, ey + eye_r // 2), max(eye_r // 2, 1), ink, -1)
        elif style == "wide":
            cv2.circle(image, (ex, ey), 2 * eye_r, (250, 250, 250), -1)
            cv2.circle(image, (ex, ey), 2 * eye_r, ink, max(thick // 2, 1))
            cv2.circle(image, (ex, ey), eye_r, ink, -1)
        elif style == "slits":
            cv2.line(image, (ex - 2 * eye_r, ey), (ex + 2 * eye_r, ey), ink, thick)
        else:
            raise ValueError(f"unknown eye style {style!r}")


def draw_face(image: np.ndarray, expression: str, centre: tuple[int, int], radius: int,
              colour: tuple[int, int, int], eyes: str = "dots") -> None:
    """Draw a face with ``expression`` (or ``neutral``: a short mouth line, no brows) into
    ``image`` (uint8 [H, W, 3]) in place; strokes are about radius / 5 thick."""
    x, y = centre
    ink, thick = (15, 15, 15), max(radius // 5, 2)
    cv2.circle(image, (x, y), radius, colour, -1, cv2.LINE_AA)
    eye_y, eye_dx, eye_r = y - radius // 3, radius // 2 - 2, max(radius // 7, 2)
    draw_eyes(image, eyes, [(x + side * eye_dx, eye_y) for side in (-1, 1)], eye_r, thick, ink)
    brow_y = eye_y - radius // 4
    mouth_y, mouth_w = y + radius // 2 - 2, radius // 2
    if expression == "smile":
        cv2.ellipse(image, (x, mouth_y - radius // 5), (mouth_w, radius // 4), 0, 0, 180, ink, thick)
    elif expression == "frown":
        cv2.ellipse(image, (x, mouth_y + radius // 6), (mouth_w, radius // 4), 0, 180, 360, ink, thick)
        for side in (-1, 1):  # sad brows: high in the middle
            cv2.line(image, (x + side * (eye_dx + eye_r), brow_y), (x + side * 2, brow_y - radius // 6), ink, thick)
    elif expression == "open":
        cv2.ellipse(image, (x, mouth_y), (radius // 4, radius // 3), 0, 0, 360, ink, -1)
        for side in (-1, 1):  # raised brows
            cv2.line(image, (x + side * (eye_dx + eye_r), brow_y - radius // 8),
                     (x + side * (eye_dx - eye_r), brow_y - radius // 8), ink, thick)
    elif expression == "neutral":
        cv2.line(image, (x - mouth_w // 2, mouth_y), (x + mouth_w // 2, mouth_y), ink, max(thick // 2, 1))
    else:  # flat mouth, angry V brows
        cv2.line(image, (x - mouth_w, mouth_y), (x + mouth_w, mouth_y), ink, thick)
        for side in (-1, 1):
            cv2.line(image, (x + side * (eye_dx + eye_r), brow_y - radius // 6), (x + side * 2, brow_y), ink, thick)


def render_frames(actor: Actor, expression: str, spec: RenderSpec, rng: np.random.Generator) -> np.ndarray:
    """uint8 [N, S, S, 3]: the actor's face drifting over a noisy background."""
    size, count = spec.frame_size, int(round(spec.seconds * spec.fps))
    radius = int(actor.radius_fraction * size)
    drift = rng.uniform(-0.06, 0.06, 2) * size
    frames = np.empty((count, size, size, 3), np.uint8)
    for index in range(count):
        image = np.empty((size, size, 3), np.uint8)
        image[:] = actor.background
        progress = index / max(count - 1, 1)
        cx = size / 2 + actor.offset[0] * size + drift[0] * progress + rng.normal(0, 0.7)
        cy = size / 2 + actor.offset[1] * size + drift[1] * progress + rng.normal(0, 0.7)
        draw_face(image, expression, (int(round(cx)), int(round(cy))), radius, actor.face_colour)
        noisy = image.astype(np.int16) + rng.normal(0, 6, image.shape).astype(np.int16)
        frames[index] = np.clip(noisy, 0, 255).astype(np.uint8)
    return frames


def render_voice(actor: Actor, contour: str, spec: RenderSpec, rng: np.random.Generator) -> np.ndarray:
    """float32 [seconds * sample_rate] voiced sound: 6 harmonics whose pitch rises or falls by an
    octave over the clip around the actor's base pitch, syllable-like loudness and noise."""
    n = int(round(spec.seconds * spec.sample_rate))
    t = np.arange(n) / spec.sample_rate
    ramp = t / spec.seconds - 0.5
    pitch = actor.base_pitch * rng.uniform(0.95, 1.05) * 2.0 ** (ramp if contour == "rising" else -ramp)
    phase = 2 * np.pi * np.cumsum(pitch) / spec.sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 7))
    loudness = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(2.5, 4.0) * t + rng.uniform(0, 2 * np.pi))
    signal = 0.25 * voice * loudness + rng.normal(0, actor.noise, n)
    return np.clip(signal, -1, 1).astype(np.float32)


# The coupled style: what the voice shows of the expression (syllables per second, harmonic
# roll-off exponent) and what the face shows of it besides mouth and brows (eyes).
COUPLED_EYES = {"smile": "arcs", "frown": "small", "open": "wide", "flat": "slits"}
COUPLED_SYLLABLE_HZ = {"smile": 6.0, "frown": 2.0, "open": 4.0, "flat": 8.0}
COUPLED_ROLLOFF = {"smile": 0.6, "frown": 2.2, "open": 1.0, "flat": 1.5}
COUPLED_TILT_DEGREES = 30.0           # head roll from the onset to the end: + rising, - falling


def coupled_frames(actor: Actor, expression: str, contour: str, onset: float, spec: RenderSpec,
                   rng: np.random.Generator) -> np.ndarray:
    """uint8 [N, S, S, 3], coupled style: a neutral face until ``onset`` (a fraction of the clip),
    then the expression (mouth, brows, eyes) while the head rolls towards the contour's side;
    per clip a random roll, face colour shift, background and drift."""
    size, count = spec.frame_size, int(round(spec.seconds * spec.fps))
    radius = int(actor.radius_fraction * size * rng.uniform(0.9, 1.1))
    drift = rng.uniform(-0.06, 0.06, 2) * size
    colour = tuple(int(np.clip(c + d, 120, 255)) for c, d in zip(actor.face_colour, rng.integers(-30, 31, 3)))
    background = tuple(int(v) for v in rng.integers(0, 60, 3))
    roll = rng.uniform(-20, 20)
    sign = 1.0 if contour == "rising" else -1.0
    frames = np.empty((count, size, size, 3), np.uint8)
    for index in range(count):
        progress = index / max(count - 1, 1)
        after = max(0.0, (progress - onset) / (1.0 - onset))
        image = np.empty((size, size, 3), np.uint8)
        image[:] = background
        cx = size / 2 + actor.offset[0] * size + drift[0] * progress + rng.normal(0, 0.7)
        cy = size / 2 + actor.offset[1] * size + drift[1] * progress + rng.normal(0, 0.7)
        centre = (int(round(cx)), int(round(cy)))
        if after > 0:
            draw_face(image, expression, centre, radius, colour, eyes=COUPLED_EYES[expression])
        else:
            draw_face(image, "neutral", centre, radius, colour)
        angle = roll + sign * COUPLED_TILT_DEGREES * after
        matrix = cv2.getRotationMatrix2D((float(cx), float(cy)), angle, 1.0)
        image = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=background)
        noisy = image.astype(np.int16) + rng.normal(0, 6, image.shape).astype(np.int16)
        frames[index] = np.clip(noisy, 0, 255).astype(np.uint8)
    return frames


def coupled_voice(actor: Actor, expression: str, contour: str, onset: float, spec: RenderSpec,
                  rng: np.random.Generator) -> np.ndarray:
    """float32 [seconds * sample_rate], coupled style: a steady voice until ``onset``, then the
    pitch moves an octave up (rising) or down (falling) while the loudness pulses at the
    expression's syllable rate and the harmonics (all below 7 kHz, so they cover most mel bins)
    fall off with its exponent; noise a quarter of the actor's level."""
    n = int(round(spec.seconds * spec.sample_rate))
    t = np.arange(n) / spec.sample_rate
    after = np.clip((t / spec.seconds - onset) / (1.0 - onset), 0.0, 1.0)
    sign = 1.0 if contour == "rising" else -1.0
    pitch = actor.base_pitch * rng.uniform(0.9, 1.1) * 2.0 ** (sign * after - 0.5 * sign)
    phase = 2 * np.pi * np.cumsum(pitch) / spec.sample_rate
    rolloff = np.where(after > 0, COUPLED_ROLLOFF[expression], 1.2)
    weights = [(k * pitch < 7000) / k ** rolloff for k in range(1, 41)]
    voice = sum(w * np.sin(k * phase) for k, w in enumerate(weights, 1)) / np.sqrt(sum(w ** 2 for w in weights))
    pulse = 0.5 + 0.5 * np.sin(2 * np.pi * COUPLED_SYLLABLE_HZ[expression] * t + rng.uniform(0, 2 * np.pi))
    loudness = np.where(after > 0, 0.1 + 0.9 * pulse, 0.5)
    signal = 0.25 * voice * loudness + rng.normal(0, actor.noise / 4, n)
    return np.clip(signal, -1, 1).astype(np.float32)


def render_clip(look: Actor, class_name: str, spec: RenderSpec,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [N, S, S, 3] frames, float32 [samples] audio) of one clip of ``class_name``
    (``<expression>_<contour>``) in ``spec.style``."""
    expression, contour = class_name.split("_")
    if spec.style == "coupled":
        onset = float(rng.uniform(0.1, 0.5))
        return (coupled_frames(look, expression, contour, onset, spec, rng),
                coupled_voice(look, expression, contour, onset, spec, rng))
    return render_frames(look, expression, spec, rng), render_voice(look, contour, spec, rng)


def clip_name(class_index: int, repetition: int, actor: int) -> str:
    """RAVDESS name: audio-video, speech, emotion = class + 1, normal intensity, statement 01."""
    return f"01-01-{class_index + 1:02d}-01-01-{repetition:02d}-{actor:02d}"


def render_actor(root: Path, actor: int, spec: RenderSpec) -> list[Path]:
    """Every clip of one actor under ``root/Actor_XX``; returns the paths."""
    folder = root / f"Actor_{actor:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    look = make_actor(actor, spec.seed)
    paths = []
    for class_index, name in enumerate(protocols.SYNTHETIC_CLASSES):
        for repetition in range(1, spec.repetitions + 1):
            rng = np.random.default_rng([spec.seed, actor, class_index, repetition])
            path = folder / f"{clip_name(class_index, repetition, actor)}.mp4"
            frames, audio = render_clip(look, name, spec, rng)
            encode.write_video(path, frames, spec.fps, audio, spec.sample_rate)
            paths.append(path)
    return paths


_render_state: dict = {}


def _init_render_worker(root: str, spec: RenderSpec) -> None:
    _render_state.update(root=Path(root), spec=spec)


def _render_one(actor: int) -> list[Path]:
    return render_actor(_render_state["root"], actor, _render_state["spec"])


def render_folder(root: Path, spec: RenderSpec, num_workers: int | None = None) -> list[Path]:
    """The whole RAVDESS-layout folder (actors 1..num_actors), one actor per task on all cores."""
    per_actor = parallel.parallel_map(_render_one, range(1, spec.num_actors + 1), num_workers,
                                      _init_render_worker, (str(root), spec), description="rendering actors")
    return [path for paths in per_actor for path in paths]
