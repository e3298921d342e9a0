"""CFAS under the paper settings halves the stacked face-over-spectrogram picture as the original
does: PIL's bicubic ``Image.resize`` of the 2S x S uint8 picture (Preprocessing_CFAS.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mmae_jax.data.fusion import fuse, pil_bicubic_taps, to_uint8


def _pictures(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 faces and spectrogram images [3, S, S, 3]: noise, a smooth ramp, hard edges at the seam."""
    rng = np.random.default_rng(seed)
    faces = rng.integers(0, 256, (3, size, size, 3)).astype(np.uint8)
    faces[1] = np.linspace(0, 255, size).astype(np.uint8)[None, :, None]
    spectrograms = rng.integers(0, 256, (3, size, size, 3)).astype(np.uint8)
    spectrograms[2, : size // 2], spectrograms[2, size // 2:] = 255, 0
    faces[2, -3:] = 0
    return faces, spectrograms


def _pil_halved(faces: np.ndarray, spectrograms: np.ndarray) -> np.ndarray:
    """The original: ``np.concatenate((face, spectrogram), axis=0)`` -> PIL ``resize((S, S))``."""
    size = faces.shape[1]
    return np.stack([np.asarray(Image.fromarray(np.concatenate([face, spectrogram], axis=0))
                                .resize((size, size), Image.BICUBIC))
                     for face, spectrogram in zip(faces, spectrograms)])


def _as_numpy(fused) -> np.ndarray:
    return np.asarray(fused.numpy() if hasattr(fused, "numpy") else fused).astype(int)


@pytest.mark.parametrize("backend", ["numpy", "tf", "jax"])
@pytest.mark.parametrize("size", [224, 32, 31])
def test_bicubic_cfas_is_pil_bicubic_within_one_level(backend, size):
    faces, spectrograms = _pictures(size)
    expected = _pil_halved(faces, spectrograms).astype(int)
    if backend == "tf":
        import tensorflow as tf
        convert = lambda x: tf.constant(x, tf.float32)
    elif backend == "jax":
        import jax.numpy as jnp
        convert = lambda x: jnp.asarray(x, jnp.float32)
    else:
        convert = lambda x: x.astype(np.float32)
    fused = fuse(convert(faces), convert(spectrograms), "cfas", cfas_resize="bicubic", backend=backend)
    got = _as_numpy(to_uint8(fused, backend))
    assert got.shape == expected.shape == (3, size, size, 3)
    assert np.abs(got - expected).max() <= 1
    assert (got != expected).mean() < 0.01          # off by one only where PIL's fixed point rounds the other way
    # the row-pair mean (the default) is a different filter: far from PIL on the same pictures
    mean = _as_numpy(to_uint8(fuse(faces.astype(np.float32), spectrograms.astype(np.float32), "cfas")))
    assert np.abs(mean - expected).max() > 20


def test_bicubic_taps_are_pils_kernel_widened_by_the_scale():
    indices, weights = pil_bicubic_taps(448, 224)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
    # an interior output row: 8 taps centred between input rows 2o and 2o + 1, symmetric
    assert indices[100].tolist() == list(range(197, 205))
    np.testing.assert_allclose(weights[100], weights[100][::-1], rtol=1e-6)
    # Keys' cubic (a = -0.5) at distances 0.25, 0.75, 1.25, 1.75 (input rows / 2), normalised
    x = np.array([1.75, 1.25, 0.75, 0.25])
    cubic = np.where(x < 1, 1.5 * x ** 3 - 2.5 * x ** 2 + 1, -0.5 * x ** 3 + 2.5 * x ** 2 - 4 * x + 2)
    half = cubic / (2 * cubic.sum())
    np.testing.assert_allclose(weights[100][:4], half, rtol=1e-6)


def test_the_paper_recipe_halves_cfas_as_the_original():
    from mmae_jax.config.recipes import dataset_config

    assert dataset_config("ravdess", None).data.cfas_resize == "bicubic"
    assert dataset_config("ravdess", "recipe=videomae").data.cfas_resize == "mean"


def test_unknown_cfas_resize_is_refused():
    faces = np.zeros((2, 4, 4, 3), np.float32)
    with pytest.raises(ValueError, match="cfas_resize"):
        fuse(faces, faces, "cfas", cfas_resize="lanczos")
