"""Spectrogram windows -> RGB images, the way the paper shows audio to a video model.

``render_spectrograms`` maps ``[T, F, W]`` windows (F frequency bins, W time steps) to
``[T, S, S, 3]`` images of pixel values 0..255 (uint8, or float32 for mixing): each window
is min-max normalised on its own, drawn with the lowest frequency at the bottom row (as
matplotlib shows a spectrogram), resized bilinearly to S x S and coloured with viridis (the
paper's matplotlib default: 256 colours, each level rounded first) or replicated to three
grey channels. ``matshow`` draws the original notebook's matplotlib picture instead:
``matshow(mfcc.T, interpolation="nearest", aspect="auto", origin="lower")`` on a 4x4-inch
figure with the axes off, shrunk to S x S (plot box with white margins, nearest-neighbour
cells: ``render_matshow``).
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from mmae_jax.config.choices import RENDER_MODES
from mmae_jax.data.fusion import to_uint8

# matplotlib's default subplot box (figure.subplot.left/right/bottom/top), as fractions of the
# figure: the plot of a 400 x 400 px figure covers columns 50..360 and rows 48..356.
AXES_LEFT, AXES_RIGHT, AXES_BOTTOM, AXES_TOP = 0.125, 0.9, 0.11, 0.88


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


@functools.lru_cache(maxsize=None)
def plot_box(image_size: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) pixel bounds of the matshow plot in an S x S picture:
    224 -> rows 27..199, columns 28..202 (172 x 174)."""
    return (round((1 - AXES_TOP) * image_size), round((1 - AXES_BOTTOM) * image_size),
            round(AXES_LEFT * image_size), round(AXES_RIGHT * image_size))


def nearest_indices(source: int, target: int) -> np.ndarray:
    """int32 [target]: the source cell a nearest-neighbour picture of ``target`` pixels shows
    in pixel i: the cell under ``(i + 0.5) * source / target``, the left one on a cell edge
    (as matplotlib draws; data_prep's ``audio.picked_steps`` stores MFCC columns the same way)."""
    return (((2 * np.arange(target, dtype=np.int64) + 1) * source - 1) // (2 * target)).astype(np.int32)


def render_matshow(windows: tf.Tensor, image_size: int, table: np.ndarray) -> tf.Tensor:
    """``[T, F, W]`` windows -> ``[T, S, S, 3]`` the way the notebook drew them.

    Each window is min-max scaled on its own (matplotlib's default norm), its lowest row at
    the bottom (``origin="lower"``), coloured as matplotlib maps a value v to colour
    ``min(floor(256 v), 255)`` of the 256-colour ``table`` ([256, 3], its dtype is the
    output's), and drawn nearest-neighbour into the plot box of ``plot_box`` on white (255).
    """
    top, bottom, left, right = plot_box(image_size)
    bins, steps = int(windows.shape[1]), int(windows.shape[2])
    scaled = normalize_windows(tf.cast(windows, tf.float32))
    levels = tf.cast(tf.minimum(tf.floor(scaled * 256.0), 255.0), tf.int32)          # [T, F, W]
    rows = nearest_indices(bins, bottom - top)[::-1]                                    # origin lower
    cells = tf.gather(tf.gather(levels, rows, axis=1), nearest_indices(steps, right - left), axis=2)
    plot = tf.gather(tf.constant(table), cells)                                          # [T, h, w, 3]
    padding = [[0, 0], [top, image_size - bottom], [left, image_size - right], [0, 0]]
    return tf.pad(plot, padding, constant_values=tf.constant(255, plot.dtype))


def check_mode(mode: str) -> None:
    """ValueError for a ``spectrogram_render`` that is not one of ``RENDER_MODES``."""
    if mode not in RENDER_MODES:
        raise ValueError(f"unknown spectrogram_render {mode!r}; choose one of {RENDER_MODES}")


def render_spectrograms(windows: tf.Tensor, image_size: int, mode: str = "viridis",
                        dtype: tf.DType = tf.uint8) -> tf.Tensor:
    """``[T, F, W]`` float windows -> ``[T, S, S, 3]`` pixel values 0..255, S = image_size.

    ``dtype`` uint8 rounds each pixel (half to even); float32 keeps the exact values (viridis:
    the colour table's, gray: the resized intensity), for strategies that mix pixels.
    """
    if mode not in RENDER_MODES:
        raise ValueError(f"unknown spectrogram_render {mode!r}; choose one of {RENDER_MODES}")
    if mode == "matshow":
        table = colormap_table("viridis") * np.float32(255.0)
        return render_matshow(windows, image_size, to_uint8(table) if dtype == tf.uint8 else table)
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
