"""Spectrogram windows -> RGB images, the way the paper shows audio to a video model.

``render_spectrograms`` maps ``[T, F, W]`` windows (F frequency bins, W time steps) to
``[T, S, S, 3]`` float images in [0, 1]: each window is min-max normalised on its own,
drawn with the lowest frequency at the bottom row (as matplotlib shows a spectrogram),
resized bilinearly to S x S and coloured with viridis (the paper's matplotlib default)
or replicated to three grey channels.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from mmae_jax.data.normalize import normalize

RENDER_MODES = ("viridis", "gray")


@functools.lru_cache(maxsize=None)
def colormap_table(name: str = "viridis") -> np.ndarray:
    """``[256, 3]`` float32 RGB lookup table of a matplotlib colormap, computed once."""
    from matplotlib import colormaps

    return colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3].astype(np.float32)


def normalize_windows(windows: tf.Tensor) -> tf.Tensor:
    """Scales each window of ``[T, F, W]`` to [0, 1]; a constant window becomes all zeros."""
    low = tf.reduce_min(windows, axis=[1, 2], keepdims=True)
    span = tf.reduce_max(windows, axis=[1, 2], keepdims=True) - low
    return tf.math.divide_no_nan(windows - low, span)


def render_spectrograms(windows: tf.Tensor, image_size: int, mode: str = "viridis",
                        normalization: str | None = None) -> tf.Tensor:
    """``[T, F, W]`` float windows -> ``[T, S, S, 3]`` float32 images in [0, 1], S = image_size;
    with ``normalization`` the images come out normalised (``normalize.py``)."""
    if mode not in RENDER_MODES:
        raise ValueError(f"unknown spectrogram_render {mode!r}; choose one of {RENDER_MODES}")
    scaled = normalize_windows(tf.cast(windows, tf.float32))
    upright = tf.reverse(scaled, axis=[1])[..., tf.newaxis]           # [T, F, W, 1]
    image = tf.image.resize(upright, [image_size, image_size], method="bilinear")
    image = tf.clip_by_value(image, 0.0, 1.0)
    if mode == "gray":
        image = tf.tile(image, [1, 1, 1, 3])
        return image if normalization is None else normalize(image, normalization)
    table = colormap_table(mode)
    if normalization is not None:
        table = normalize(table, normalization)       # normalising 256 colours, not the pixels
    levels = tf.cast(tf.round(image[..., 0] * 255.0), tf.int32)       # [T, S, S]
    return tf.gather(tf.constant(table), levels)
