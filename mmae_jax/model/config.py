"""Model configuration: the VideoMAE variants and every architectural switch.

A plain frozen dataclass so it can be saved as JSON next to a checkpoint and rebuilt
exactly (``to_dict`` / ``from_dict``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mmae_jax.errors import ConfigError

# dim, depth, heads of the encoder; decoder width/depth/heads of the official
# pre-training models (modeling_pretrain.py of VideoMAE).
VARIANTS: dict[str, dict[str, int]] = {
    "tiny": dict(embed_dim=128, depth=4, num_heads=4,
                 decoder_embed_dim=64, decoder_depth=2, decoder_num_heads=2),
    "small": dict(embed_dim=384, depth=12, num_heads=6,
                  decoder_embed_dim=192, decoder_depth=4, decoder_num_heads=3),
    "base": dict(embed_dim=768, depth=12, num_heads=12,
                 decoder_embed_dim=384, decoder_depth=4, decoder_num_heads=6),
    "large": dict(embed_dim=1024, depth=24, num_heads=16,
                  decoder_embed_dim=512, decoder_depth=4, decoder_num_heads=8),
    "huge": dict(embed_dim=1280, depth=32, num_heads=16,
                 decoder_embed_dim=640, decoder_depth=4, decoder_num_heads=8),
}

REMAT_POLICIES = ("none", "full", "dots", "dots_no_batch")
# The attention kernels of model/attention.py; "auto" picks one by the target's platform.
ATTENTION_IMPLEMENTATIONS = ("auto", "einsum", "xla", "cudnn", "splash", "triton")
HEAD_NORMS = ("fc_norm", "fresh")
HEAD_INITS = ("trunc_normal", "glorot_uniform")
DTYPES = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class VideoMAEConfig:
    """Every switch of the encoder, the classifier and the MAE pre-training model.

    Compute switches change how the step runs, never its parameters: ``dtype``,
    ``attention_impl``, ``remat_policy`` (what the backward pass recomputes per block) and
    ``scan_blocks``. ``scan_blocks=True`` runs the encoder's and the decoder's blocks as one
    ``jax.lax.scan`` (``model/block_scan.py``): the same outputs, gradients and dropout masks
    as the blocks run one by one, the parameters still one entry per block (checkpoints, the
    converters, model-info and the layer-wise learning-rate decay are unchanged), and a compiled
    program that holds the block once, so compiling takes about as long at any depth. With
    ``remat_policy='none'`` the loop keeps everything autodiff saves for the backward pass in
    stacked buffers (about twice the unrolled program's peak memory); pair it with ``'dots'``
    or ``'full'`` (with ``'dots'``, 20% above the unrolled program's peak). docs/scaling.md has
    the measured compile time, peak memory and step cost of ViT-B on TPU v5e; off by default.
    """

    variant: str = "base"
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    num_classes: int = 7
    num_frames: int = 16
    img_size: int = 224
    patch_size: int = 16
    tubelet_size: int = 2
    in_chans: int = 3
    # Add VideoMAE's fixed sine-cosine position table to the patch tokens. False: the original
    # notebook's backbone, a Keras Sequential of the innat/VideoMAE port's layers, which never
    # runs the port's forward_features where the table is added (docs/reproduce.md).
    position_table: bool = True
    # Regularisation.
    drop_rate: float = 0.0          # dropout after attention projection and in the MLP
    fc_drop_rate: float = 0.0       # dropout before the classification head
    drop_path_rate: float = 0.0     # stochastic depth, linearly increasing over blocks
    init_values: float = 0.0        # layer scale (gamma_1/gamma_2); 0 disables it
    # Classifier.
    use_mean_pooling: bool = True   # False: final norm, token 0, no fc_norm
    head_init_scale: float = 0.001  # multiplies the trunc_normal head's initial kernel and bias
    head_init: str = "trunc_normal"  # trunc_normal (VideoMAE, std 0.02) | glorot_uniform (Keras Dense)
    # The norm of the pooled tokens: "fc_norm" (VideoMAE's, loaded from a checkpoint, frozen in a
    # linear probe) or "fresh" (the original notebook's head: a new LayerNorm named head_norm,
    # never loaded from a checkpoint, trained with the head even when the backbone is frozen).
    head_norm: str = "fc_norm"
    freeze_backbone: bool = False   # linear probe: gradients stop before the head
    # MAE pre-training.
    decoder_embed_dim: int = 384
    decoder_depth: int = 4
    decoder_num_heads: int = 6
    mask_ratio: float = 0.9
    norm_pix_loss: bool = True
    # LayerNorm epsilons. VideoMAE uses 1e-6 everywhere; Hugging Face's VideoMAE uses its
    # config's layer_norm_eps (default 1e-12) in the blocks and the encoder's final norm, and
    # PyTorch's default 1e-5 in fc_norm and the decoder's final norm (the converter sets both).
    layer_norm_eps: float = 1e-6        # every block (encoder and decoder), encoder.norm
    head_layer_norm_eps: float = 1e-6   # fc_norm, decoder.norm
    # Compute.
    dtype: str = "float32"          # compute dtype; parameters are always float32
    attention_impl: str = "auto"    # by the target's platform (model/attention.py), or a kernel's name
    remat_policy: str = "none"      # per-block rematerialisation
    scan_blocks: bool = False       # the blocks as one jax.lax.scan (see the class docstring)

    def __post_init__(self):
        for field in dataclasses.fields(self):
            if isinstance(field.default, bool) and not isinstance(getattr(self, field.name), bool):
                raise ConfigError(f"{field.name}={getattr(self, field.name)!r} is not a bool", "give true or false")
        for name in ("num_classes", "num_frames", "img_size", "embed_dim", "depth", "num_heads"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not a positive integer", "give 1 or more")
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.decoder_embed_dim % self.decoder_num_heads:
            raise ConfigError(f"decoder_embed_dim {self.decoder_embed_dim} is not divisible by "
                             f"decoder_num_heads {self.decoder_num_heads}")
        if self.num_frames % self.tubelet_size:
            raise ConfigError(f"num_frames {self.num_frames} is not a multiple of tubelet_size {self.tubelet_size}")
        if self.img_size % self.patch_size:
            raise ConfigError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ConfigError(f"mask_ratio must lie in [0, 1), got {self.mask_ratio}")
        if self.head_norm == "fresh" and not self.use_mean_pooling:
            raise ConfigError("head_norm='fresh' normalises mean-pooled tokens; it needs use_mean_pooling")
        if not (self.layer_norm_eps > 0 and self.head_layer_norm_eps > 0):
            raise ConfigError(f"layer norm epsilons must be positive, got {self.layer_norm_eps} "
                             f"and {self.head_layer_norm_eps}")
        for name, value, allowed in (("remat_policy", self.remat_policy, REMAT_POLICIES),
                                     ("attention_impl", self.attention_impl, ATTENTION_IMPLEMENTATIONS),
                                     ("dtype", self.dtype, DTYPES),
                                     ("head_norm", self.head_norm, HEAD_NORMS),
                                     ("head_init", self.head_init, HEAD_INITS)):
            if value not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}, got {value!r}")

    @classmethod
    def from_variant(cls, variant: str, **overrides: Any) -> "VideoMAEConfig":
        """The named variant's sizes, with any field overridden."""
        if variant not in VARIANTS:
            raise ConfigError(f"unknown variant {variant!r}", f"choose one of {', '.join(VARIANTS)}")
        return cls(variant=variant, **{**VARIANTS[variant], **overrides})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "VideoMAEConfig":
        """Rebuild from ``to_dict`` output; unknown keys are an error (they mean a typo)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown model config keys: {unknown}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "VideoMAEConfig":
        return dataclasses.replace(self, **changes)

    # Derived sizes ---------------------------------------------------------------
    @property
    def grid(self) -> tuple[int, int, int]:
        """Token grid (T', H', W') = (frames/tubelet, size/patch, size/patch)."""
        side = self.img_size // self.patch_size
        return self.num_frames // self.tubelet_size, side, side

    @property
    def num_patches(self) -> int:
        t, h, w = self.grid
        return t * h * w

    @property
    def patch_dim(self) -> int:
        """Pixel values in one tube: tubelet * patch * patch * channels (1536 for RGB)."""
        return self.tubelet_size * self.patch_size * self.patch_size * self.in_chans

    @property
    def compute_dtype(self):
        import jax.numpy as jnp
        return jnp.bfloat16 if self.dtype == "bfloat16" else jnp.float32
