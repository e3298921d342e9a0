"""The host/device boundary of pixel values: uint8 in, normalised float32 out, in one place.

The host pipeline hands the device uint8 clips (pixel values 0..255); ``to_model_input``
turns them into what the model reads, ``(x / 255 - mean) / std`` per channel, inside the
jitted train, eval and predict steps. Nothing else normalises.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# By name of config.choices.NORMALIZATIONS. The original MultiMAE-DER code uses ImageNet's mean with one std for every channel; the
# VideoMAE checkpoints were trained with ImageNet's mean and std.
NORMALIZATIONS = {
    "imagenet_mean_std0225": ((0.485, 0.456, 0.406), (0.225, 0.225, 0.225)),
    "videomae": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def mean_std(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(mean, std)`` float32 vectors of a named normalisation."""
    if name not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {name!r}; choose one of {tuple(NORMALIZATIONS)}")
    mean, std = NORMALIZATIONS[name]
    return np.asarray(mean, np.float32), np.asarray(std, np.float32)


def normalize(images: Any, name: str) -> Any:
    """``[..., 3]`` images in [0, 1] (NumPy, tf or jnp) -> normalised, same backend."""
    mean, std = mean_std(name)
    return (images - mean) / std


def to_model_input(pixels: Any, name: str) -> Any:
    """``[..., 3]`` pixel values 0..255 (uint8, or float) -> the normalised float32 model input.

    One multiply-add per value: ``pixels * (1 / (255 std)) - mean / std``. NumPy arrays give
    NumPy (pictures on the host); anything else goes through ``jax.numpy`` (the steps).
    """
    mean, std = mean_std(name)
    scale, offset = 1.0 / (255.0 * std), -mean / std
    if isinstance(pixels, np.ndarray):
        return pixels.astype(np.float32) * scale + offset
    import jax.numpy as jnp
    return jnp.asarray(pixels, jnp.float32) * scale + offset


def denormalize(images: Any, name: str) -> Any:
    """Inverse of ``normalize``: back to [0, 1] images for display."""
    mean, std = mean_std(name)
    return images * std + mean
