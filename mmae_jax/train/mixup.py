"""Mixup / CutMix on clips and label smoothing (VideoMAE's fine-tuning recipe).

One mixing coefficient per batch, as timm's ``Mixup(mode='batch')``: each clip is mixed
with the clip at the mirrored position of its own shard of the batch (the whole batch outside
a device mesh, as timm); CutMix cuts the same box from every frame. Pairing inside each shard
keeps the batch where it is: no device sends its clips to another. With one clip per shard a
clip is paired with itself (no mixing).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mmae_jax.model.attention import batch_shards, constrain_to_batch


def smooth_labels(labels: jax.Array, num_classes: int, smoothing: float) -> jax.Array:
    """Integer labels ``[B]`` -> soft targets ``[B, K]``."""
    onehot = jax.nn.one_hot(labels, num_classes)
    return onehot * (1.0 - smoothing) + smoothing / num_classes


def mirror_within_shards(x: jax.Array) -> jax.Array:
    """``x [B, ...]`` with each shard's rows in reverse order (the shards of the current mesh)."""
    shards = batch_shards()
    if x.shape[0] % shards:
        shards = 1
    grouped = x.reshape(shards, x.shape[0] // shards, *x.shape[1:])
    return constrain_to_batch(grouped[:, ::-1]).reshape(x.shape)


def _cutmix_box_mask(rng: jax.Array, lam: jax.Array, height: int, width: int) -> jax.Array:
    """``[H, W]`` float mask, 1 inside a random box covering about ``1 - lam`` of the frame."""
    cut = jnp.sqrt(1.0 - lam)
    cut_h, cut_w = (height * cut).astype(jnp.int32), (width * cut).astype(jnp.int32)
    cy_key, cx_key = jax.random.split(rng)
    cy = jax.random.randint(cy_key, (), 0, height)
    cx = jax.random.randint(cx_key, (), 0, width)
    rows, cols = jnp.arange(height)[:, None], jnp.arange(width)[None, :]
    inside = ((rows >= jnp.clip(cy - cut_h // 2, 0, height)) & (rows < jnp.clip(cy + cut_h // 2, 0, height))
              & (cols >= jnp.clip(cx - cut_w // 2, 0, width)) & (cols < jnp.clip(cx + cut_w // 2, 0, width)))
    return inside.astype(jnp.float32)


def mix_batch(rng: jax.Array, video: jax.Array, targets: jax.Array, *, mixup_alpha: float,
              cutmix_alpha: float, switch_prob: float = 0.5) -> tuple[jax.Array, jax.Array]:
    """Mix ``video [B, T, H, W, C]`` and soft ``targets [B, K]`` with Mixup or CutMix.

    With both alphas > 0 CutMix is chosen with ``switch_prob``. Returns the mixed pair.
    """
    if mixup_alpha <= 0 and cutmix_alpha <= 0:
        return video, targets
    choose_key, mixup_key, cutmix_key, box_key = jax.random.split(rng, 4)
    height, width = video.shape[2], video.shape[3]
    if mixup_alpha > 0 and cutmix_alpha > 0:
        use_cutmix = jax.random.uniform(choose_key) < switch_prob
    else:
        use_cutmix = jnp.asarray(cutmix_alpha > 0)
    # Mixup keeps ``lam`` of every pixel of a clip; CutMix keeps the pixels outside a box. Both are
    # one ``[H, W]`` weight, so the clips are mixed by one elementwise pass that XLA fuses with the
    # normalisation and the cast (no branch holding whole batches).
    mix_lam = jax.random.beta(mixup_key, mixup_alpha, mixup_alpha) if mixup_alpha > 0 else jnp.float32(1.0)
    if cutmix_alpha > 0:
        box = _cutmix_box_mask(box_key, jax.random.beta(cutmix_key, cutmix_alpha, cutmix_alpha), height, width)
        keep = jnp.where(use_cutmix, 1.0 - box, mix_lam)
        lam = jnp.where(use_cutmix, 1.0 - box.mean(), mix_lam)   # the area actually cut, as timm corrects it
    else:
        keep, lam = jnp.broadcast_to(mix_lam, (height, width)), mix_lam
    keep = keep[None, None, :, :, None]
    mixed = (video * keep + mirror_within_shards(video) * (1.0 - keep)).astype(video.dtype)
    return mixed, targets * lam + mirror_within_shards(targets) * (1.0 - lam)
