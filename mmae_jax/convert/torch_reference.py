"""An independent PyTorch VideoMAE with the official state-dict layout, for parity checks.

Written after VideoMAE's ``modeling_finetune.py`` / ``modeling_pretrain.py`` (not after the
JAX model): ``VisionTransformer`` (fine-tuned classifier) and ``PretrainVisionTransformer``
(encoder + decoder). Inputs are PyTorch's ``[B, C, T, H, W]``. Dropout and drop path are
left out: parity is checked in eval mode.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmae_jax.model.config import VideoMAEConfig


def sinusoid_table(num_positions: int, dim: int) -> torch.Tensor:
    """``get_sinusoid_encoding_table`` of VideoMAE: ``[1, num_positions, dim]``."""
    angles = np.array([[p / np.power(10000, 2 * (j // 2) / dim) for j in range(dim)]
                       for p in range(num_positions)])
    angles[:, 0::2] = np.sin(angles[:, 0::2])
    angles[:, 1::2] = np.cos(angles[:, 1::2])
    return torch.tensor(angles, dtype=torch.float32).unsqueeze(0)


def _norm(dim: int) -> nn.LayerNorm:
    return nn.LayerNorm(dim, eps=1e-6)


class PatchEmbed(nn.Module):
    def __init__(self, in_chans: int, dim: int, tubelet: int, patch: int):
        super().__init__()
        self.proj = nn.Conv3d(in_chans, dim, kernel_size=(tubelet, patch, patch), stride=(tubelet, patch, patch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)          # [B, N, D]


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, init_values: float):
        super().__init__()
        self.norm1 = _norm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = _norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        if init_values > 0:
            self.gamma_1 = nn.Parameter(init_values * torch.ones(dim))
            self.gamma_2 = nn.Parameter(init_values * torch.ones(dim))
        else:
            self.gamma_1 = self.gamma_2 = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gamma_1 is None:
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))
        x = x + self.gamma_1 * self.attn(self.norm1(x))
        return x + self.gamma_2 * self.mlp(self.norm2(x))


def _blocks(dim: int, depth: int, num_heads: int, cfg: VideoMAEConfig) -> nn.ModuleList:
    return nn.ModuleList([Block(dim, num_heads, cfg.mlp_ratio, cfg.init_values) for _ in range(depth)])


class VisionTransformer(nn.Module):
    """The fine-tuned classifier: ``[B, C, T, H, W] -> logits``; ``forward_features`` -> ``[B, D]``."""

    def __init__(self, cfg: VideoMAEConfig):
        super().__init__()
        self.patch_embed = PatchEmbed(cfg.in_chans, cfg.embed_dim, cfg.tubelet_size, cfg.patch_size)
        self.register_buffer("pos_table", sinusoid_table(cfg.num_patches, cfg.embed_dim), persistent=False)
        self.blocks = _blocks(cfg.embed_dim, cfg.depth, cfg.num_heads, cfg)
        self.norm = nn.Identity() if cfg.use_mean_pooling else _norm(cfg.embed_dim)
        self.fc_norm = _norm(cfg.embed_dim) if cfg.use_mean_pooling else None
        self.head = nn.Linear(cfg.embed_dim, cfg.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x) + self.pos_table
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return self.fc_norm(x.mean(1)) if self.fc_norm is not None else x[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


class PretrainEncoder(nn.Module):
    """``[B, C, T, H, W]``, ``mask [B, N]`` (True = hidden) -> visible tokens ``[B, Nv, D]``."""

    def __init__(self, cfg: VideoMAEConfig):
        super().__init__()
        self.patch_embed = PatchEmbed(cfg.in_chans, cfg.embed_dim, cfg.tubelet_size, cfg.patch_size)
        self.register_buffer("pos_table", sinusoid_table(cfg.num_patches, cfg.embed_dim), persistent=False)
        self.blocks = _blocks(cfg.embed_dim, cfg.depth, cfg.num_heads, cfg)
        self.norm = _norm(cfg.embed_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.patch_embed(x) + self.pos_table
        if mask is not None:
            x = x[~mask].reshape(x.shape[0], -1, x.shape[-1])
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class PretrainDecoder(nn.Module):
    def __init__(self, cfg: VideoMAEConfig):
        super().__init__()
        self.blocks = _blocks(cfg.decoder_embed_dim, cfg.decoder_depth, cfg.decoder_num_heads, cfg)
        self.norm = _norm(cfg.decoder_embed_dim)
        self.head = nn.Linear(cfg.decoder_embed_dim, cfg.patch_dim)

    def forward(self, x: torch.Tensor, return_token_num: int) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, -return_token_num:]))


class PretrainVisionTransformer(nn.Module):
    """The MAE model: ``(x [B, C, T, H, W], mask [B, N]) -> predictions [B, Nm, patch_dim]``."""

    def __init__(self, cfg: VideoMAEConfig):
        super().__init__()
        self.encoder = PretrainEncoder(cfg)
        self.decoder = PretrainDecoder(cfg)
        self.encoder_to_decoder = nn.Linear(cfg.embed_dim, cfg.decoder_embed_dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.decoder_embed_dim))
        self.register_buffer("pos_table", sinusoid_table(cfg.num_patches, cfg.decoder_embed_dim), persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        visible = self.encoder_to_decoder(self.encoder(x, mask))
        b, _, c = visible.shape
        pos = self.pos_table.expand(b, -1, -1)
        pos_visible = pos[~mask].reshape(b, -1, c)
        pos_masked = pos[mask].reshape(b, -1, c)
        full = torch.cat([visible + pos_visible, self.mask_token + pos_masked], dim=1)
        return self.decoder(full, pos_masked.shape[1])


def randomize_parameters(module: nn.Module, seed: int, scale: float = 0.05) -> nn.Module:
    """Give every parameter random values (in place), so that no mapping hides behind an init.

    LayerNorm weights and layer scales become ``1 + scale * N(0, 1)``; everything else
    (biases, q/v biases, heads, mask token) ``scale * N(0, 1)``; heads are not shrunk, so
    the logits are large enough to compare.
    """
    generator = torch.Generator().manual_seed(seed)
    norm_weights = {f"{name}.weight" for name, sub in module.named_modules() if isinstance(sub, nn.LayerNorm)}
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator) * scale
            is_unit = name in norm_weights or name.split(".")[-1] in ("gamma_1", "gamma_2")
            parameter.copy_(noise + 1.0 if is_unit else noise)
    return module
