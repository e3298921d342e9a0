"""Tube masking: one random spatial mask, repeated at every time step (VideoMAE)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def num_visible_per_frame(patches_per_frame: int, mask_ratio: float) -> int:
    """Visible spatial positions per time step: ``round(patches_per_frame * (1 - ratio))``.

    For 196 patches and ratio 0.9 this is 20 (176 masked), the same as VideoMAE's
    ``int(ratio * 196)`` masked.
    """
    return int(round(patches_per_frame * (1.0 - mask_ratio)))


def tube_mask(rng: jax.Array, batch: int, grid: tuple[int, int, int], mask_ratio: float
              ) -> tuple[jax.Array, jax.Array]:
    """Indices of visible and masked tokens, each sorted ascending.

    Args:
      rng: PRNG key; each clip of the batch draws its own spatial mask.
      batch: B.
      grid: token grid (T', H', W'); tokens are numbered t * H'W' + s.
      mask_ratio: fraction of spatial positions hidden at every time step.

    Returns:
      ``visible_idx [B, T' * Nv]`` and ``masked_idx [B, T' * (H'W' - Nv)]`` (int32).
    """
    frames, height, width = grid
    per_frame = height * width
    keep = num_visible_per_frame(per_frame, mask_ratio)
    order = jnp.argsort(jax.random.uniform(rng, (batch, per_frame)), axis=1)   # random permutation
    spatial_visible = jnp.sort(order[:, :keep], axis=1)
    spatial_masked = jnp.sort(order[:, keep:], axis=1)
    offsets = (jnp.arange(frames) * per_frame)[None, :, None]

    def expand(spatial):  # [B, S] -> [B, T' * S], time-major like the token order
        return (offsets + spatial[:, None, :]).reshape(batch, -1).astype(jnp.int32)

    return expand(spatial_visible), expand(spatial_masked)


def boolean_mask(masked_idx: jax.Array, num_tokens: int) -> jax.Array:
    """``[B, N]`` with True at masked tokens (VideoMAE's ``bool_masked_pos``)."""
    batch = masked_idx.shape[0]
    mask = jnp.zeros((batch, num_tokens), bool)
    return mask.at[jnp.arange(batch)[:, None], masked_idx].set(True)
