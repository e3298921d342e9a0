"""Parameter, token and FLOP counts computed from the model without allocating weights."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mmae_jax.model.config import VideoMAEConfig
from mmae_jax.model.encoder import VideoMAEClassifier, trainable_filter
from mmae_jax.model.masking import num_visible_per_frame


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    variant: str
    num_classes: int
    input_shape: tuple[int, int, int, int]     # (T, H, W, C)
    parameters: int
    trainable_parameters: int
    tokens: int
    forward_flops: float                       # per clip, from XLA's cost analysis


def abstract_classifier(cfg: VideoMAEConfig) -> VideoMAEClassifier:
    """The classifier with ``jax.ShapeDtypeStruct`` leaves instead of arrays."""
    return nnx.eval_shape(lambda: VideoMAEClassifier(cfg, rngs=nnx.Rngs(0)))


def count_parameters(model: nnx.Module, param_filter=nnx.Param) -> int:
    """Number of scalars in the model's state that ``param_filter`` selects."""
    leaves = jax.tree.leaves(nnx.state(model, param_filter))
    return int(sum(np.prod(leaf.shape) for leaf in leaves))


def forward_flops(cfg: VideoMAEConfig, batch: int = 1, model: VideoMAEClassifier | None = None) -> float:
    """FLOPs of one forward pass per clip, from XLA's cost analysis of the lowered program.
    ``model``: ``abstract_classifier(cfg)`` when the caller has built it already.

    The blocks are counted unrolled: XLA counts a loop's body once, and scanned blocks
    (``scan_blocks``) compute the same products."""
    if model is None or cfg.scan_blocks:
        model = abstract_classifier(cfg.replace(scan_blocks=False))
    graphdef, state = nnx.split(model)
    clips = jax.ShapeDtypeStruct((batch, cfg.num_frames, cfg.img_size, cfg.img_size, cfg.in_chans),
                                 jnp.float32)

    def forward(state, x):
        return nnx.merge(graphdef, state)(x)

    analysis = jax.jit(forward).lower(state, clips).cost_analysis()
    if isinstance(analysis, (list, tuple)):  # older jax returns one dict per device
        analysis = analysis[0]
    return float(analysis["flops"]) / batch


def model_info(cfg: VideoMAEConfig) -> ModelInfo:
    model = abstract_classifier(cfg)
    return ModelInfo(
        variant=cfg.variant,
        num_classes=cfg.num_classes,
        input_shape=(cfg.num_frames, cfg.img_size, cfg.img_size, cfg.in_chans),
        parameters=count_parameters(model),
        trainable_parameters=count_parameters(model, trainable_filter(cfg)),
        tokens=cfg.num_patches,
        forward_flops=forward_flops(cfg, model=model),
    )


def _blocks_flops(tokens: int, dim: int, depth: int, mlp_ratio: float) -> float:
    """Matrix-multiply FLOPs of ``depth`` transformer blocks over ``tokens`` tokens of width ``dim``."""
    hidden = int(dim * mlp_ratio)
    return depth * (2 * tokens * dim * (3 * dim + dim + 2 * hidden) + 2 * 2 * tokens * tokens * dim)  # + QK^T, AV


def analytic_forward_flops(cfg: VideoMAEConfig) -> float:
    """Matrix-multiply FLOPs (2 per multiply-add) of one clip's forward pass, by formula."""
    n, d = cfg.num_patches, cfg.embed_dim
    embed = 2 * n * cfg.patch_dim * d
    return float(embed + _blocks_flops(n, d, cfg.depth, cfg.mlp_ratio) + 2 * d * cfg.num_classes)


def analytic_pretrain_forward_flops(cfg: VideoMAEConfig) -> float:
    """Matrix-multiply FLOPs of one clip's MAE pre-training forward pass, by formula: patch
    embedding of every tube, encoder on the visible tokens, decoder on all, pixel head on the masked."""
    n, d, dd = cfg.num_patches, cfg.embed_dim, cfg.decoder_embed_dim
    frames = cfg.num_frames // cfg.tubelet_size
    visible = frames * num_visible_per_frame(n // frames, cfg.mask_ratio)
    return float(2 * n * cfg.patch_dim * d + _blocks_flops(visible, d, cfg.depth, cfg.mlp_ratio)
                 + 2 * visible * d * dd + _blocks_flops(n, dd, cfg.decoder_depth, cfg.mlp_ratio)
                 + 2 * (n - visible) * dd * cfg.patch_dim)
