"""The fusion strategies of MultiMAE-DER: one definition for NumPy, TensorFlow and JAX.

Every strategy turns T face frames and T rendered spectrogram images (both ``[T, S, S, 3]``
pixel values 0..255, window t centred on frame t's time) into one ``[T, S, S, 3]`` sequence:

========== =================================================================
fslf       spectrograms 0, 2, ..., T-2, then faces 0, 2, ..., T-2
ffls       faces 0, 2, ..., T-2, then spectrograms 0, 2, ..., T-2
ofos       face 0, spectrogram 0, face 2, spectrogram 2, ...
rfas       the T frames of ``ofos`` in a random order drawn from ``rng``
cfas       frame t = face t stacked above spectrogram t (2S x S), halved in height
           (see ``CFAS_RESIZES``)
sfas       frame t = face t + spectrogram t (see ``SFAS_MODES``)
face_only  the T face frames
audio_only the T spectrogram images
========== =================================================================

The frame-arranging strategies are a gather from the 2T-frame stack ``[faces;
spectrograms]`` (see ``frame_order``), so every backend runs the same few array calls.
The caller names the backend of its inputs (``backend``, one of ``BACKENDS``): 'numpy' for
NumPy arrays (the default, checked), 'tf' for ``tf.Tensor`` (inside tf.data graphs too),
'jax' for ``jax.Array`` (inside ``jax.jit`` too).

Pixel values and rounding: the frame-arranging strategies only move frames, so they work on
uint8 (or any dtype) and are exact. cfas and sfas mix pixels and take float pixel values;
the host pipeline rounds their result once with ``to_uint8`` (half to even), so a mixed
pixel is within 0.5 of the exact mix: cfas ``mean`` and sfas ``mean`` average two values (a
half rounds to the even neighbour), cfas ``bicubic`` is within 1 level of PIL's resize of the
uint8 picture (PIL rounds its own fixed-point sum), sfas ``clip`` rounds the saturated sum, and
sfas ``wrap`` adds the two rounded values modulo 256, which is exact on integers.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from mmae_jax.config.choices import CFAS_RESIZES, FRAME_STRATEGIES, SFAS_MODES
from mmae_jax.config.validate import check_mixing, check_strategy

BACKENDS = ("numpy", "tf", "jax")


class _Ops(NamedTuple):
    """The few array operations fusion needs, under NumPy's names, for one backend."""

    take: Any          # take(x, indices, axis)
    concatenate: Any   # concatenate(list_of_x, axis)
    clip: Any          # clip(x, lo, hi)
    round: Any
    mod: Any
    permutation: Any   # permutation(rng, n) -> int vector
    reshape: Any       # reshape(x, shape)
    as_uint8: Any      # as_uint8(x): cast, values already whole and in 0..255


def _numpy_ops() -> _Ops:
    return _Ops(np.take, np.concatenate, np.clip, np.round, np.mod,
                lambda rng, n: np.asarray(rng.permutation(n)), np.reshape, lambda x: x.astype(np.uint8))


def _jax_ops() -> _Ops:
    import jax
    import jax.numpy as jnp
    return _Ops(jnp.take, jnp.concatenate, jnp.clip, jnp.round, jnp.mod,
                lambda key, n: jax.random.permutation(key, n), jnp.reshape, lambda x: x.astype(jnp.uint8))


def _tf_ops() -> _Ops:
    import tensorflow as tf
    return _Ops(lambda x, i, axis: tf.gather(x, i, axis=axis),
                lambda xs, axis: tf.concat(xs, axis=axis),
                tf.clip_by_value, tf.round, tf.math.floormod,
                lambda seed, n: tf.argsort(tf.random.stateless_uniform([n], seed)), tf.reshape,
                lambda x: tf.cast(x, tf.uint8))


def _ops(backend: str, x: Any) -> _Ops:
    """The operations of ``backend`` (one of ``BACKENDS``), whose arrays ``x`` is; TensorFlow and
    JAX are imported only when named. 'numpy' refuses anything but a NumPy array, so a tensor
    passed without its backend is an error, not a silent conversion."""
    if backend == "numpy":
        if not isinstance(x, np.ndarray):
            raise TypeError(f"backend='numpy' takes NumPy arrays, got {type(x).__name__}; "
                            f"pass backend='tf' or backend='jax'")
        return _numpy_ops()
    if backend == "tf":
        return _tf_ops()
    if backend == "jax":
        return _jax_ops()
    raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")


def frame_order(strategy: str, num_frames: int) -> np.ndarray:
    """Indices into the stack ``[faces; spectrograms]`` (face t at t, spectrogram t at T + t).

    Returns an int32 vector of length T for the frame-arranging strategies; for ``rfas`` it is
    the ``ofos`` order, which ``fuse`` permutes.
    """
    check_strategy(strategy, num_frames)
    if strategy not in FRAME_STRATEGIES:
        raise ValueError(f"strategy {strategy!r} combines pixels and has no frame order")
    t = num_frames
    even = np.arange(0, t, 2)
    orders = {
        "fslf": lambda: np.concatenate([t + even, even]),
        "ffls": lambda: np.concatenate([even, t + even]),
        "ofos": lambda: np.stack([even, t + even], axis=1).reshape(-1),
        "face_only": lambda: np.arange(t),
        "audio_only": lambda: np.arange(t, 2 * t),
    }
    return orders["ofos" if strategy == "rfas" else strategy]().astype(np.int32)


def source_frames(strategy: str, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(face indices, spectrogram indices) that ``strategy`` reads; the others can be skipped."""
    if strategy in ("cfas", "sfas"):
        check_strategy(strategy, num_frames)
        every = np.arange(num_frames, dtype=np.int32)
        return every, every
    order = np.sort(frame_order(strategy, num_frames))
    return order[order < num_frames], order[order >= num_frames] - num_frames


def fuse(faces: Any, spectrograms: Any, strategy: str, *, rng: Any = None,
         sfas_mode: str = "mean", cfas_resize: str = "mean", backend: str = "numpy") -> Any:
    """Builds the fused ``[T, S, S, 3]`` sequence from ``faces`` and ``spectrograms``.

    Args:
      faces: ``[T, S, S, 3]`` face frames, pixel values 0..255 (float for cfas and sfas).
      spectrograms: ``[T, S, S, 3]`` spectrogram images like ``faces``, window t at frame t.
      strategy: one of ``STRATEGIES``.
      rng: only for ``rfas``: a ``np.random.Generator`` for NumPy inputs, a stateless seed
        (int tensor of shape [2]) for TF inputs, a ``jax.random`` key for JAX inputs.
      sfas_mode: one of ``SFAS_MODES``.
      cfas_resize: one of ``CFAS_RESIZES``.
      backend: the library of the inputs, one of ``BACKENDS``.

    Returns:
      ``[T, S, S, 3]`` of the inputs' backend and dtype (cfas, sfas: not rounded; cfas
      ``bicubic``: float32).
    """
    if tuple(faces.shape) != tuple(spectrograms.shape) or len(faces.shape) != 4:
        raise ValueError(f"faces and spectrograms must both be [T, S, S, 3], got "
                         f"{tuple(faces.shape)} and {tuple(spectrograms.shape)}")
    num_frames = int(faces.shape[0])
    check_strategy(strategy, num_frames)
    check_mixing(sfas_mode, cfas_resize)
    ops = _ops(backend, faces)
    if strategy == "cfas" and cfas_resize == "bicubic":
        return _resample_rows(ops, ops.concatenate([faces, spectrograms], axis=1), int(faces.shape[1]))
    if strategy == "cfas":
        # Face above spectrogram is [T, 2S, S, 3]; halving its height with an area filter is
        # the mean of each pair of rows.
        if int(faces.shape[1]) % 2 == 0:      # no row pair straddles the two images
            return ops.concatenate([_mean_of_row_pairs(ops, faces),
                                    _mean_of_row_pairs(ops, spectrograms)], axis=1)
        return _mean_of_row_pairs(ops, ops.concatenate([faces, spectrograms], axis=1))
    if strategy == "sfas":
        return _sum_images(ops, faces, spectrograms, sfas_mode)
    order = _drawn(ops, frame_order(strategy, num_frames), strategy, rng)
    return ops.take(ops.concatenate([faces, spectrograms], axis=0), order, axis=0)


def read_frame_order(strategy: str, num_frames: int) -> np.ndarray:
    """``frame_order`` re-indexed into the stack ``[faces read; spectrograms read]``.

    The frames read are those of ``source_frames``, in their order; for every frame-arranging
    strategy they are T in all (e.g. fslf: faces 0, 2, ... then spectrograms 0, 2, ...).
    """
    face_indices, spectrogram_indices = source_frames(strategy, num_frames)
    position = np.full(2 * num_frames, -1, np.int32)
    position[face_indices] = np.arange(face_indices.size)
    position[num_frames + spectrogram_indices] = face_indices.size + np.arange(spectrogram_indices.size)
    return position[frame_order(strategy, num_frames)]


def fuse_read_frames(faces_read: Any, spectrograms_read: Any, strategy: str, *,
                     rng: Any = None, backend: str = "numpy") -> Any:
    """A frame-arranging strategy from only the frames it reads; equal to ``fuse``.

    Args:
      faces_read: ``[k, S, S, C]`` the faces at ``source_frames(strategy, T)[0]``.
      spectrograms_read: ``[T - k, S, S, C]`` the images at ``source_frames(strategy, T)[1]``.
      strategy: one of ``FRAME_STRATEGIES``; ``rng`` and ``backend`` as for ``fuse``.

    Returns:
      ``[T, S, S, C]``. The frames are only moved, so any per-pixel transform (such as the
      rounding to uint8) may be applied to the inputs instead of the result.
    """
    num_frames = int(faces_read.shape[0]) + int(spectrograms_read.shape[0])
    ops = _ops(backend, faces_read)
    order = read_frame_order(strategy, num_frames)
    parts = [part for part in (faces_read, spectrograms_read) if int(part.shape[0])]
    stack = parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=0)
    if strategy != "rfas" and np.array_equal(order, np.arange(num_frames)):
        return stack            # ffls, face_only, audio_only: the stack is already in order
    return ops.take(stack, _drawn(ops, order, strategy, rng), axis=0)


def _drawn(ops: _Ops, order: Any, strategy: str, rng: Any) -> Any:
    """``order`` itself, or for ``rfas`` permuted by a draw from ``rng``."""
    if strategy != "rfas":
        return order
    if rng is None:
        raise ValueError("strategy 'rfas' needs `rng` to draw its frame order")
    return ops.take(order, ops.permutation(rng, int(order.shape[0])), axis=0)


def _mean_of_row_pairs(ops: _Ops, images: Any) -> Any:
    """``[T, 2H, W, C] -> [T, H, W, C]``: each output row is the mean of two input rows."""
    t, height, width, channels = (int(n) for n in images.shape)
    pairs = ops.reshape(images, (t, height // 2, 2, width, channels))
    return (pairs[:, :, 0] + pairs[:, :, 1]) / 2


def _pil_cubic(x: np.ndarray) -> np.ndarray:
    """PIL's bicubic kernel (Keys, a = -0.5) at distances ``x``."""
    x, a = np.abs(x), -0.5
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


@functools.lru_cache(maxsize=16)
def pil_bicubic_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices int32 ``[out_size, K]``, weights float32 ``[out_size, K]``): output sample o of
    PIL's bicubic ``Image.resize`` along one axis is ``sum_k weights[o, k] * x[indices[o, k]]``
    (Pillow's ``precompute_coeffs``: centre ``(o + 0.5) * scale``, kernel widened by
    ``max(scale, 1)``, taps cut at the image border and renormalised to sum 1; rows with fewer
    than K taps are padded with weight 0). PIL sums in 22-bit fixed point and rounds to uint8;
    in float the sum is within 0.5 of its own before that rounding."""
    scale = in_size / out_size
    widen = max(scale, 1.0)
    support = 2.0 * widen
    rows = []
    for out in range(out_size):
        centre = (out + 0.5) * scale
        taps = np.arange(max(int(centre - support + 0.5), 0), min(int(centre + support + 0.5), in_size))
        kernel = _pil_cubic((taps - centre + 0.5) / widen)
        rows.append((taps, kernel / kernel.sum()))
    width = max(len(taps) for taps, _ in rows)
    indices = np.zeros((out_size, width), np.int32)
    weights = np.zeros((out_size, width), np.float32)
    for out, (taps, kernel) in enumerate(rows):
        indices[out, :len(taps)], weights[out, :len(taps)] = taps, kernel
    return indices, weights


def _resample_rows(ops: _Ops, images: Any, height: int) -> Any:
    """``[T, H_in, W, C] -> [T, height, W, C]`` by PIL's bicubic taps along the rows (float)."""
    indices, weights = pil_bicubic_taps(int(images.shape[1]), height)
    result = 0.0
    for k in range(indices.shape[1]):     # K (about 8) gathers of whole rows, weighted
        result = result + ops.take(images, indices[:, k], axis=1) * weights[None, :, k, None, None]
    return result


def _sum_images(ops: _Ops, faces: Any, spectrograms: Any, mode: str) -> Any:
    if mode == "mean":
        return (faces + spectrograms) / 2
    if mode == "clip":
        return ops.clip(faces + spectrograms, 0.0, 255.0)
    return ops.mod(ops.round(faces) + ops.round(spectrograms), 256.0)        # wrap


def to_uint8(pixels: Any, backend: str = "numpy") -> Any:
    """Float pixel values -> uint8, rounded half to even and clipped to 0..255 (same backend,
    one of ``BACKENDS``)."""
    ops = _ops(backend, pixels)
    return ops.as_uint8(ops.clip(ops.round(pixels), 0.0, 255.0))
