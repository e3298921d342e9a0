"""Cutting clips into tubes of pixels and back (the MAE targets' layout)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def patchify(x: jax.Array, tubelet: int, patch: int) -> jax.Array:
    """``[B, T, H, W, C] -> [B, N, tubelet*patch*patch, C]``, tokens in (t, h, w) order.

    Pixels within a tube are ordered (dt, dy, dx), as VideoMAE's
    ``rearrange('b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2) c')``.
    """
    b, t, h, w, c = x.shape
    x = x.reshape(b, t // tubelet, tubelet, h // patch, patch, w // patch, patch, c)
    x = x.transpose(0, 1, 3, 5, 2, 4, 6, 7)
    return x.reshape(b, -1, tubelet * patch * patch, c)


def unpatchify(tubes: jax.Array, grid: tuple[int, int, int], tubelet: int, patch: int) -> jax.Array:
    """Inverse of ``patchify`` for flattened tubes ``[B, N, tubelet*patch*patch*C] -> [B, T, H, W, C]``."""
    b = tubes.shape[0]
    gt, gh, gw = grid
    x = tubes.reshape(b, gt, gh, gw, tubelet, patch, patch, -1)
    x = x.transpose(0, 1, 4, 2, 5, 3, 6, 7)
    return x.reshape(b, gt * tubelet, gh * patch, gw * patch, -1)


def pixel_targets(x: jax.Array, tubelet: int, patch: int, normalize: bool) -> jax.Array:
    """MAE regression targets ``[B, N, tubelet*patch*patch*C]`` in float32.

    With ``normalize`` each tube is standardised per channel over its pixels (unbiased
    variance, +1e-6 on the std), as VideoMAE's ``normlize_target``.
    """
    tubes = patchify(x.astype(jnp.float32), tubelet, patch)          # [B, N, P, C]
    if normalize:
        mean = tubes.mean(axis=-2, keepdims=True)
        std = jnp.sqrt(tubes.var(axis=-2, keepdims=True, ddof=1))
        tubes = (tubes - mean) / (std + 1e-6)
    return tubes.reshape(*tubes.shape[:2], -1)
