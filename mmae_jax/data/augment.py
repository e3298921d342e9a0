"""Training augmentations (TensorFlow, stateless: every draw comes from an explicit seed).

Faces stay pixel values 0..255: uint8 in, float32 out where they are resampled (the caller
rounds once, see ``transform.py``).

Faces get a random resized crop and a horizontal flip, drawn once per clip so that all T
frames move together; spectrogram windows get optional time and frequency masks
(SpecAugment-style), drawn per window and filled with that window's mean.
"""

from __future__ import annotations

import math

import tensorflow as tf



def resize_faces(faces: tf.Tensor, image_size: int) -> tf.Tensor:
    """``[T, H, W, 3]`` uint8 -> ``[T, S, S, 3]``: unchanged (uint8) when H = W = S, else
    resized bilinearly to float32 pixel values."""
    if tuple(faces.shape[1:3]) == (image_size, image_size):
        return faces
    return tf.image.resize(faces, [image_size, image_size], method="bilinear")


def crop_box(seed: tf.Tensor, height: int, width: int, scale: tuple[float, float],
             ratio: tuple[float, float]) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """(top, left, box height, box width), int32 scalars: a whole-pixel box inside ``height x width``.

    The box covers a fraction ``scale`` of the area (drawn uniformly) with aspect ratio
    ``ratio`` (w / h, drawn log-uniformly), each side rounded to whole pixels and kept inside
    the image, at a uniformly drawn position (torchvision's ``RandomResizedCrop`` draw,
    without its retries).
    """
    draws = tf.random.stateless_uniform([4], seed)
    area = (scale[0] + (scale[1] - scale[0]) * draws[0]) * height * width
    aspect = tf.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * draws[1])
    box_height = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area / aspect)), tf.int32), 1, height)
    box_width = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area * aspect)), tf.int32), 1, width)
    top = tf.cast(tf.floor(draws[2] * tf.cast(height - box_height + 1, tf.float32)), tf.int32)
    left = tf.cast(tf.floor(draws[3] * tf.cast(width - box_width + 1, tf.float32)), tf.int32)
    return (tf.minimum(top, height - box_height), tf.minimum(left, width - box_width),
            box_height, box_width)


def random_resized_crop(faces: tf.Tensor, seed: tf.Tensor, image_size: int,
                        scale: tuple[float, float], ratio: tuple[float, float], *,
                        flip_seed: tf.Tensor | None = None) -> tf.Tensor:
    """``[T, H, W, 3]`` uint8 -> ``[T, S, S, 3]`` float32 pixel values, one crop box for all frames.

    The box is ``crop_box``'s; its pixels are resized bilinearly to ``S x S`` (half-pixel
    centres, as ``resize_faces`` and torchvision's ``resized_crop``). With ``flip_seed`` the
    crop is mirrored left-right with probability 1/2 (``random_flip``'s draw), before the
    resize, where it costs a third of the bytes; the resize commutes with the mirror.
    """
    height, width = int(faces.shape[1]), int(faces.shape[2])
    top, left, box_height, box_width = crop_box(seed, height, width, scale, ratio)
    crop = faces[:, top:top + box_height, left:left + box_width]
    if flip_seed is not None:
        crop = random_flip(crop, flip_seed)
    return tf.image.resize(crop, [image_size, image_size], method="bilinear")


def _flip_drawn(seed: tf.Tensor) -> tf.Tensor:
    return tf.random.stateless_uniform([], seed) < 0.5


def random_flip(frames: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Mirrors all frames of ``[T, H, W, C]`` left-right with probability 1/2."""
    return tf.cond(_flip_drawn(seed), lambda: tf.reverse(frames, axis=[2]), lambda: frames)


def _band_mask(length: int, max_width: int, count: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """``[count, length]`` bool: one band of 0..max_width positions per row, at a random start."""
    draws = tf.random.stateless_uniform([2, count], seed)
    width = tf.cast(tf.floor(draws[0] * (max_width + 1)), tf.int32)
    start = tf.cast(tf.floor(draws[1] * tf.cast(length - width + 1, tf.float32)), tf.int32)
    position = tf.range(length)[tf.newaxis]
    return (position >= start[:, tf.newaxis]) & (position < (start + width)[:, tf.newaxis])


def mask_spectrograms(windows: tf.Tensor, seed: tf.Tensor, max_time_fraction: float,
                      max_freq_fraction: float) -> tf.Tensor:
    """Masks one frequency band and one time band of each ``[T, F, W]`` window.

    Band widths are drawn uniformly up to ``max_*_fraction`` of the axis (0 turns a mask off).
    """
    num_windows, num_bins, num_steps = windows.shape
    time_seed, freq_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    freq = _band_mask(num_bins, int(max_freq_fraction * num_bins), num_windows, freq_seed)
    time = _band_mask(num_steps, int(max_time_fraction * num_steps), num_windows, time_seed)
    masked = freq[:, :, tf.newaxis] | time[:, tf.newaxis, :]
    fill = tf.reduce_mean(windows, axis=[1, 2], keepdims=True)
    return tf.where(masked, fill, windows)
