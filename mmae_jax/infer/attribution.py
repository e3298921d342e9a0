"""Modality attribution: how much of a prediction rests on the faces versus the spectrograms.

Method: gradient x input of the predicted class's logit, taken with respect to the face images
and the spectrogram images *before* fusion (``[T, S, S, 3]`` each, pixel values 0..255, so the
baseline is a black image). The fusion, its rounding to whole pixel values (passed by the
gradient as the identity) and the normalisation are differentiated through, so the same rule
splits every strategy:

- fslf / ffls / ofos / rfas / face_only / audio_only: every fused frame is one source frame
  (a gather), so a modality's relevance is the relevance of its fused frames; the source
  frames the strategy skips get none.
- cfas: the fused frame's top half is the face and its bottom half the spectrogram (rows
  averaged in pairs; with ``cfas_resize`` bicubic the rows next to the seam mix both), and the
  gradient x input of each source image gives each modality its own share.
- sfas with ``sfas_mode`` mean: each pixel is (face + spectrogram) / 2, so each summand gets
  its own term of the gradient x input (exact); clip: the same where the sum stays below 1,
  while saturated pixels pass no gradient to either summand.
- sfas with ``sfas_mode`` wrap: the original's uint8 sum that wraps past 255 rounds both
  summands, which has no gradient, so no share is reported (not separable).

A modality's relevance is the sum over its pixels of ``|sum over channels of grad * input|``;
the two shares are relevance / (face + spectrogram relevance) and sum to 1.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from mmae_jax.data.fusion import FRAME_STRATEGIES, fuse
from mmae_jax.data.normalize import to_model_input

METHOD = "gradient_x_input"
NOT_SEPARABLE = {("sfas", "wrap"): "sfas_mode 'wrap' rounds both summands to uint8 before adding them: "
                                   "no gradient reaches either modality, so no split is reported"}


@dataclasses.dataclass(frozen=True)
class Attribution:
    """Relevance of one prediction.

    face, spectrogram: shares of the relevance (sum to 1), or None when not separable (``note``).
    frame_relevance: ``[T, S, S]`` |sum over channels of grad * input| on the fused frames.
    frame_sources: what each fused frame shows, e.g. "face 0", "spectrogram 2",
      "face 3 / spectrogram 3" (cfas: above / below), "face 3 + spectrogram 3" (sfas).
    """

    face: float | None
    spectrogram: float | None
    frame_relevance: np.ndarray
    frame_sources: tuple[str, ...]
    note: str = ""

    def shares(self) -> dict:
        """The JSON form: method, the two shares, and the note when there is one."""
        shares = dict(method=METHOD, face=self.face, spectrogram=self.spectrogram)
        return shares | ({"note": self.note} if self.note else {})


@dataclasses.dataclass(frozen=True)
class FusionSpec:
    """How the fused sequence is made from the two modalities (fields of the data config)."""

    strategy: str
    sfas_mode: str = "mean"
    normalization: str = "imagenet_mean_std0225"
    cfas_resize: str = "mean"

    def fused_video(self, faces: jax.Array, spectrograms: jax.Array, key: jax.Array | None) -> jax.Array:
        """``[T, S, S, 3]`` float pixel values 0..255 (both) -> the fused ``[T, S, S, 3]``, rounded
        to whole pixel values as the host pipeline's uint8 clip (a float array; the gradient
        passes the rounding as the identity)."""
        fused = fuse(faces, spectrograms, self.strategy, rng=key if self.strategy == "rfas" else None,
                     sfas_mode=self.sfas_mode, cfas_resize=self.cfas_resize, backend="jax")
        return _round_straight_through(fused)

    def model_input(self, faces: jax.Array, spectrograms: jax.Array, key: jax.Array | None) -> jax.Array:
        """The normalised fused clip ``[T, S, S, 3]`` the model reads."""
        return to_model_input(self.fused_video(faces, spectrograms, key), self.normalization)


def _round_straight_through(pixels: jax.Array) -> jax.Array:
    """``fusion.to_uint8``'s values as floats, with the gradient of the identity."""
    return pixels + jax.lax.stop_gradient(jnp.clip(jnp.round(pixels), 0.0, 255.0) - pixels)


def relevance_pass(logit_fn: Callable[[jax.Array], jax.Array], fusion: FusionSpec, faces: jax.Array,
                   spectrograms: jax.Array, key: jax.Array | None) -> dict[str, jax.Array]:
    """Logits and the gradient x input maps of the predicted class (JAX-traceable: jit it).

    ``logit_fn`` maps one normalised fused clip ``[T, S, S, 3]`` to logits ``[K]``. Returns
    ``logits [K]``, ``frames [T, S, S, 3]`` (the fused clip, pixel values), and relevance maps
    ``fused [T, S, S]``, ``face [T, S, S]``, ``spectrogram [T, S, S]`` (signed, summed over
    channels).
    """
    fused, fusion_vjp = jax.vjp(lambda f, s: fusion.fused_video(f, s, key), faces, spectrograms)
    logits, logits_vjp = jax.vjp(lambda v: logit_fn(to_model_input(v, fusion.normalization)), fused)
    target = jax.nn.one_hot(jnp.argmax(logits), logits.shape[-1], dtype=logits.dtype)
    (fused_grad,) = logits_vjp(target)
    face_grad, spectrogram_grad = fusion_vjp(fused_grad)
    return dict(logits=logits, frames=fused, fused=(fused_grad * fused).sum(-1),
                face=(face_grad * faces).sum(-1), spectrogram=(spectrogram_grad * spectrograms).sum(-1))


def frame_sources(fusion: FusionSpec, num_frames: int, key: jax.Array | None) -> tuple[str, ...]:
    """What each fused frame shows, found by fusing frame numbers instead of images."""
    if fusion.strategy == "cfas":
        return tuple(f"face {t} / spectrogram {t}" for t in range(num_frames))
    if fusion.strategy == "sfas":
        return tuple(f"face {t} + spectrogram {t}" for t in range(num_frames))
    assert fusion.strategy in FRAME_STRATEGIES, fusion.strategy
    numbers = jnp.arange(2 * num_frames, dtype=jnp.float32)[:, None, None, None]
    order = np.asarray(fusion.fused_video(numbers[:num_frames], numbers[num_frames:], key)).reshape(-1)
    return tuple(f"face {int(i)}" if i < num_frames else f"spectrogram {int(i) - num_frames}" for i in order)


def attribution_from_pass(maps: dict, fusion: FusionSpec, key: jax.Array | None) -> Attribution:
    """Shares and per-frame relevance from the output of ``relevance_pass``."""
    face = float(np.abs(np.asarray(maps["face"])).sum())
    spectrogram = float(np.abs(np.asarray(maps["spectrogram"])).sum())
    frame_relevance = np.abs(np.asarray(maps["fused"], np.float32))
    sources = frame_sources(fusion, frame_relevance.shape[0], key)
    note = NOT_SEPARABLE.get((fusion.strategy, fusion.sfas_mode), "")
    if not note and face + spectrogram == 0.0:
        note = "the predicted logit has zero gradient with respect to every input pixel"
    if note:
        return Attribution(None, None, frame_relevance, sources, note)
    total = face + spectrogram
    return Attribution(face / total, spectrogram / total, frame_relevance, sources)
