"""Spectrogram windows -> RGB images, the way the paper shows audio to a video model.

``render_spectrograms`` maps ``[T, F, W]`` windows (F frequency bins, W time steps) to
``[T, S, S, 3]`` images of pixel values 0..255 (uint8, or float32 for mixing): each window
is min-max normalised on its own, drawn with the lowest frequency at the bottom row (as
matplotlib shows a spectrogram), resized bilinearly to S x S and coloured with viridis (the
paper's matplotlib default: 256 colours, each level rounded first) or replicated to three
grey channels. ``paper`` draws the notebook's matplotlib picture instead (plot box with white
margins, nearest-neighbour cells: ``notebook.render_matshow``).
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from mmae_jax.data import notebook
from mmae_jax.data.fusion import to_uint8

RENDER_MODES = ("viridis", "gray", "paper")  # paper: the notebook's matshow picture (notebook.py)


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
                        dtype: tf.DType = tf.uint8) -> tf.Tensor:
    """``[T, F, W]`` float windows -> ``[T, S, S, 3]`` pixel values 0..255, S = image_size.

    ``dtype`` uint8 rounds each pixel (half to even); float32 keeps the exact values (viridis:
    the colour table's, gray: the resized intensity), for strategies that mix pixels.
    """
    if mode not in RENDER_MODES:
        raise ValueError(f"unknown spectrogram_render {mode!r}; choose one of {RENDER_MODES}")
    if mode == "paper":
        table = colormap_table("viridis") * np.float32(255.0)
        return notebook.render_matshow(windows, image_size, to_uint8(table) if dtype == tf.uint8 else table)
    scaled = normalize_windows(tf.cast(windows, tf.float32))
    upright = tf.reverse(scaled, axis=[1])[..., tf.newaxis]           # [T, F, W, 1]
    image = tf.image.resize(upright, [image_size, image_size], method="bilinear")
    image = tf.clip_by_value(image, 0.0, 1.0)
    if mode == "gray":
        pixels = to_uint8(image * 255.0, "tf") if dtype == tf.uint8 else image * 255.0
        return tf.tile(pixels, [1, 1, 1, 3])
    table = colormap_table(mode) * np.float32(255.0)                 # a 256-colour lookup
    table = to_uint8(table) if dtype == tf.uint8 else table
    levels = tf.cast(tf.round(image[..., 0] * 255.0), tf.int32)       # [T, S, S]
    return tf.gather(tf.constant(table), levels)
