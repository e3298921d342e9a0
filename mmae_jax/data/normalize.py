"""Input normalisation of the fused clips: ``(x - mean) / std`` per channel, x in [0, 1]."""

from __future__ import annotations

from typing import Any

import numpy as np

# The original MultiMAE-DER code uses ImageNet's mean with one std for every channel; the
# VideoMAE checkpoints were trained with ImageNet's mean and std.
NORMALIZATIONS = {
    "paper": ((0.485, 0.456, 0.406), (0.225, 0.225, 0.225)),
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


def pixels_to_model_range(pixels: Any, name: str | None = None) -> Any:
    """``[..., 3]`` float pixel values in [0, 255] -> images in [0, 1], or with a normalisation
    ``name`` straight to ``normalize(pixels / 255, name)`` in one multiply-add."""
    if name is None:
        return pixels / 255.0
    mean, std = mean_std(name)
    return pixels * (1.0 / (255.0 * std)) + (-mean / std)


def denormalize(images: Any, name: str) -> Any:
    """Inverse of ``normalize``: back to [0, 1] images for display."""
    mean, std = mean_std(name)
    return images * std + mean
