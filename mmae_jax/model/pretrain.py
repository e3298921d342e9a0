"""The MAE pre-training model: tube-masked encoder, light decoder, pixel loss on masked tubes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from mmae_jax.model.config import VideoMAEConfig
from mmae_jax.model.encoder import VideoMAEEncoder, position_embedding
from mmae_jax.model.layers import apply_blocks, dense, layer_norm, make_blocks
from mmae_jax.model.masking import tube_mask
from mmae_jax.model.patches import pixel_targets


class VideoMAEDecoder(nnx.Module):
    """Decoder blocks -> norm -> pixel head, applied to the masked tokens only.

    ``[B, Nv + Nm, Dd] -> [B, Nm, tubelet*patch*patch*C]`` (float32).
    """

    def __init__(self, cfg: VideoMAEConfig, *, rngs: nnx.Rngs):
        dtype = cfg.compute_dtype
        self.remat_policy = cfg.remat_policy
        self.scan_blocks = cfg.scan_blocks
        self.blocks = make_blocks(cfg.decoder_embed_dim, cfg.decoder_depth, cfg.decoder_num_heads,
                                  cfg.mlp_ratio, drop_rate=0.0, drop_path_rate=0.0,
                                  init_values=cfg.init_values, norm_eps=cfg.layer_norm_eps,
                                  dtype=dtype, attention_impl=cfg.attention_impl, rngs=rngs)
        self.norm = layer_norm(cfg.decoder_embed_dim, cfg.head_layer_norm_eps, dtype, rngs)
        self.head = dense(cfg.decoder_embed_dim, cfg.patch_dim, jnp.float32, rngs)

    def __call__(self, x: jax.Array, num_masked: int) -> jax.Array:
        x = apply_blocks(self.blocks, x, self.remat_policy, scan=self.scan_blocks)
        return self.head(self.norm(x[:, -num_masked:]).astype(jnp.float32))


class VideoMAEPretrainer(nnx.Module):
    """VideoMAE's pre-training model (``encoder``, ``encoder_to_decoder``, ``mask_token``, ``decoder``).

    ``__call__(x [B, T, H, W, C], visible_idx, masked_idx) -> predictions [B, Nm, P]`` for
    the masked tubes in ascending token order.
    """

    def __init__(self, cfg: VideoMAEConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        self.encoder = VideoMAEEncoder(cfg, final_norm=True, rngs=rngs)
        self.encoder_to_decoder = dense(cfg.embed_dim, cfg.decoder_embed_dim, cfg.compute_dtype, rngs,
                                        use_bias=False)
        self.mask_token = nnx.Param(jax.random.truncated_normal(rngs.params(), -2.0, 2.0,
                                                                (1, 1, cfg.decoder_embed_dim)) * 0.02)
        self.decoder = VideoMAEDecoder(cfg, rngs=rngs)

    def __call__(self, x: jax.Array, visible_idx: jax.Array, masked_idx: jax.Array) -> jax.Array:
        visible = self.encoder_to_decoder(self.encoder(x, visible_idx))   # [B, Nv, Dd]
        batch, _, dim = visible.shape
        num_tokens = visible_idx.shape[1] + masked_idx.shape[1]
        pos = jnp.broadcast_to(position_embedding(num_tokens, dim, visible.dtype), (batch, num_tokens, dim))
        pos_visible = jnp.take_along_axis(pos, visible_idx[..., None], axis=1)
        pos_masked = jnp.take_along_axis(pos, masked_idx[..., None], axis=1)
        mask_tokens = jnp.broadcast_to(self.mask_token[...].astype(visible.dtype), pos_masked.shape)
        full = jnp.concatenate([visible + pos_visible, mask_tokens + pos_masked], axis=1)
        return self.decoder(full, masked_idx.shape[1])

    def loss(self, x: jax.Array, rng: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Tube-mask ``x``, reconstruct, and return the MSE over masked tubes only.

        Returns ``(loss, aux)`` with ``aux`` holding ``per_clip`` (``[B]`` losses),
        ``predictions``, ``visible_idx`` and ``masked_idx`` (for reconstruction pictures).
        """
        cfg = self.cfg
        visible_idx, masked_idx = tube_mask(rng, x.shape[0], token_grid(cfg, x.shape), cfg.mask_ratio)
        predictions = self(x, visible_idx, masked_idx)
        targets = pixel_targets(x, cfg.tubelet_size, cfg.patch_size, cfg.norm_pix_loss)
        targets = jnp.take_along_axis(targets, masked_idx[..., None], axis=1)
        per_clip = jnp.mean((predictions - targets) ** 2, axis=(1, 2))
        # Every clip hides the same number of tubes, so the mean of clip means is the mean.
        return per_clip.mean(), dict(per_clip=per_clip, predictions=predictions, visible_idx=visible_idx,
                                     masked_idx=masked_idx)


def token_grid(cfg: VideoMAEConfig, video_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Token grid (T', H', W') of clips of ``video_shape`` ``[B, T, H, W, C]``."""
    return (video_shape[1] // cfg.tubelet_size, video_shape[2] // cfg.patch_size,
            video_shape[3] // cfg.patch_size)
