"""The VideoMAE ViT encoder and the emotion classifier built on it."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mmae_jax.model.attention import constrain_to_batch
from mmae_jax.model.config import VideoMAEConfig
from mmae_jax.model.layers import PatchEmbed, apply_blocks, dense, layer_norm, make_blocks
from mmae_jax.model.position import sinusoid_position_table


@functools.lru_cache(maxsize=32)
def _position_table(num_positions: int, dim: int) -> np.ndarray:
    return sinusoid_position_table(num_positions, dim)


def position_embedding(num_positions: int, dim: int, dtype) -> jax.Array:
    """The fixed table as a ``[1, num_positions, dim]`` constant."""
    return jnp.asarray(_position_table(num_positions, dim), dtype)[None]


class VideoMAEEncoder(nnx.Module):
    """Tubelet embedding + fixed position table (unless ``cfg.position_table`` is False) +
    transformer blocks (+ optional final norm).

    ``__call__(x [B, T, H, W, C], visible_idx [B, Nv] | None) -> [B, N or Nv, D]``. With
    ``visible_idx`` only those tokens (the MAE encoder's visible set) enter the blocks.
    """

    def __init__(self, cfg: VideoMAEConfig, *, final_norm: bool, rngs: nnx.Rngs):
        dtype = cfg.compute_dtype
        self.embed_dim = cfg.embed_dim
        self.dtype = dtype
        self.remat_policy = cfg.remat_policy
        self.scan_blocks = cfg.scan_blocks
        self.position_table = cfg.position_table
        self.patch_embed = PatchEmbed(cfg.embed_dim, cfg.tubelet_size, cfg.patch_size, cfg.in_chans,
                                      dtype, rngs)
        self.pos_drop = nnx.Dropout(cfg.drop_rate, rngs=rngs)
        self.blocks = make_blocks(cfg.embed_dim, cfg.depth, cfg.num_heads, cfg.mlp_ratio,
                                  drop_rate=cfg.drop_rate, drop_path_rate=cfg.drop_path_rate,
                                  init_values=cfg.init_values, norm_eps=cfg.layer_norm_eps,
                                  dtype=dtype, attention_impl=cfg.attention_impl, rngs=rngs)
        self.norm = layer_norm(cfg.embed_dim, cfg.layer_norm_eps, dtype, rngs) if final_norm else None

    def __call__(self, x: jax.Array, visible_idx: jax.Array | None = None) -> jax.Array:
        tokens = constrain_to_batch(self.patch_embed(x.astype(self.dtype)))   # [B, N, D]
        if self.position_table:
            tokens = tokens + position_embedding(tokens.shape[1], self.embed_dim, tokens.dtype)
        if visible_idx is not None:
            tokens = jnp.take_along_axis(tokens, visible_idx[..., None], axis=1)
        tokens = apply_blocks(self.blocks, self.pos_drop(tokens), self.remat_policy, scan=self.scan_blocks)
        return tokens if self.norm is None else self.norm(tokens)


class VideoMAEClassifier(nnx.Module):
    """VideoMAE for classification: ``[B, T, H, W, C] -> logits [B, num_classes]`` (float32).

    Mean pooling: mean of tokens -> ``fc_norm`` -> dropout -> ``head``. Without mean
    pooling (``use_mean_pooling=False``): final ``encoder.norm`` -> token 0 -> ``head``,
    as the official code does. With ``head_norm='fresh'`` the norm is ``head_norm``, a new
    LayerNorm that no checkpoint fills (the original notebook's head). ``freeze_backbone``
    stops gradients before the trainable head (``head``, and ``head_norm`` when fresh):
    a linear probe; ``trainable_filter`` selects what the optimiser gets.
    """

    def __init__(self, cfg: VideoMAEConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        self.encoder = VideoMAEEncoder(cfg, final_norm=not cfg.use_mean_pooling, rngs=rngs)
        pooled_norm = (layer_norm(cfg.embed_dim, cfg.head_layer_norm_eps, cfg.compute_dtype, rngs)
                       if cfg.use_mean_pooling else None)
        fresh = cfg.head_norm == "fresh"
        self.fc_norm = None if fresh else pooled_norm
        self.head_norm = pooled_norm if fresh else None
        self.fc_dropout = nnx.Dropout(cfg.fc_drop_rate, rngs=rngs)
        if cfg.head_init == "glorot_uniform":
            self.head = nnx.Linear(cfg.embed_dim, cfg.num_classes, dtype=jnp.float32, param_dtype=jnp.float32,
                                   kernel_init=nnx.initializers.glorot_uniform(), rngs=rngs)
        else:
            self.head = dense(cfg.embed_dim, cfg.num_classes, jnp.float32, rngs)
            scale = cfg.head_init_scale
            self.head.kernel[...] = self.head.kernel[...] * scale
            self.head.bias[...] = self.head.bias[...] * scale

    def features(self, x: jax.Array) -> jax.Array:
        """Pooled features ``[B, D]`` in float32 (the head's input before dropout).

        With a frozen backbone the gradient stops at the pooled tokens when the norm is fresh
        (it trains), after ``fc_norm`` otherwise.
        """
        tokens = self.encoder(x)
        if self.head_norm is not None:
            pooled = tokens.mean(axis=1)
            if self.cfg.freeze_backbone:
                pooled = jax.lax.stop_gradient(pooled)
            return self.head_norm(pooled).astype(jnp.float32)
        if self.fc_norm is not None:
            pooled = self.fc_norm(tokens.mean(axis=1))
        else:
            pooled = tokens[:, 0]
        pooled = pooled.astype(jnp.float32)
        return jax.lax.stop_gradient(pooled) if self.cfg.freeze_backbone else pooled

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.fc_dropout(self.features(x)))


def trainable_filter(cfg: VideoMAEConfig):
    """The nnx filter of parameters an optimiser should update: all, or with a frozen backbone
    ``head`` and ``head_norm`` (which exists only when ``head_norm='fresh'``)."""
    if cfg.freeze_backbone:
        return nnx.All(nnx.Param, nnx.Any(nnx.PathContains("head"), nnx.PathContains("head_norm")))
    return nnx.Param
