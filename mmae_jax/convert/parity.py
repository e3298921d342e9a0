"""Run a checkpoint in PyTorch and, converted, in JAX on the same input; measure the differences.

The PyTorch side is built from the checkpoint's own state dict: ``torch_reference`` for the
official families (``load_state_dict(strict=True)``), transformers' VideoMAE classes for
Hugging Face folders (``from_pretrained``). Outputs compared (float32, eval mode):

- classifiers: ``logits [B, K]`` and pooled ``features [B, D]``;
- pre-training models: encoder ``tokens [B, N, D]`` and decoder ``predictions [B, Nm, P]``
  under one tube mask (ratio 0.75, seeded);
- a bare Hugging Face ``VideoMAEModel``: encoder ``tokens [B, N, D]``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from mmae_jax.convert.converter import ConversionResult, convert
from mmae_jax.convert.torch_loading import LoadedCheckpoint, require_torch
from mmae_jax.model.masking import boolean_mask, tube_mask
from mmae_jax.model.pretrain import VideoMAEPretrainer

MASK_RATIO = 0.75   # leaves visible tokens even on tiny test grids


@dataclasses.dataclass(frozen=True)
class Difference:
    output: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float          # max |torch - jax| / max |torch|
    torch_max: float

    @classmethod
    def between(cls, output: str, reference: np.ndarray, ours: np.ndarray) -> "Difference":
        if reference.shape != ours.shape:
            raise ValueError(f"{output}: PyTorch gives {reference.shape}, JAX {ours.shape}")
        scale = float(np.abs(reference).max())
        max_abs = float(np.abs(reference - ours).max())
        return cls(output, reference.shape, max_abs, max_abs / max(scale, 1e-30), scale)


def compare_checkpoint(checkpoint: LoadedCheckpoint, *, batch: int = 1, seed: int = 0,
                       variant: str | None = None) -> tuple[ConversionResult, list[Difference]]:
    """Convert ``checkpoint``, run both sides on one random ``[B, C, T, H, W]`` input, compare."""
    torch = require_torch()
    has_decoder = any(key.startswith("decoder.") for key in checkpoint.tensors)
    result = convert(checkpoint, variant=variant, keep_decoder=has_decoder)
    cfg = result.cfg
    x = np.random.default_rng(seed).standard_normal(
        (batch, cfg.in_chans, cfg.num_frames, cfg.img_size, cfg.img_size)).astype(np.float32)
    x_jax = jnp.asarray(x.transpose(0, 2, 3, 4, 1))                          # [B, T, H, W, C]
    visible_idx, masked_idx = tube_mask(jax.random.key(seed), batch, cfg.grid, MASK_RATIO)
    mask = np.asarray(boolean_mask(masked_idx, cfg.num_patches))
    with torch.no_grad():
        if result.family == "huggingface":
            reference = _huggingface_outputs(checkpoint, torch.from_numpy(x), torch.from_numpy(mask.copy()))
        else:
            reference = _official_outputs(checkpoint, result, torch.from_numpy(x), torch.from_numpy(mask.copy()))
    ours = _jax_outputs(result.model, set(reference), x_jax, visible_idx, masked_idx)
    return result, [Difference.between(name, reference[name], ours[name]) for name in reference]


def _official_outputs(checkpoint, result: ConversionResult, x, mask) -> dict[str, np.ndarray]:
    import torch

    from mmae_jax.convert import torch_reference
    state_dict = {name: torch.from_numpy(np.array(value)) for name, value in checkpoint.tensors.items()
                  if not name.endswith("pos_embed")}
    if result.family == "official-pretrain":
        model = torch_reference.PretrainVisionTransformer(result.cfg)
        model.load_state_dict(state_dict, strict=True)
        model.eval()
        return dict(tokens=model.encoder(x).numpy(), predictions=model(x, mask).numpy())
    model = torch_reference.VisionTransformer(result.cfg)
    model.load_state_dict(state_dict, strict=True)
    model.eval()
    return dict(logits=model(x).numpy(), features=model.forward_features(x).numpy())


def _huggingface_outputs(checkpoint, x, mask) -> dict[str, np.ndarray]:
    import transformers

    folder = checkpoint.path.parent
    pixels = x.permute(0, 2, 1, 3, 4)                                         # [B, T, C, H, W]
    keys = checkpoint.tensors
    if any(key.startswith("decoder.") for key in keys):
        model = transformers.VideoMAEForPreTraining.from_pretrained(folder).eval()
        return dict(tokens=model.videomae(pixels).last_hidden_state.numpy(),
                    predictions=model(pixels, bool_masked_pos=mask).logits.numpy())
    if "classifier.weight" in keys:
        model = transformers.VideoMAEForVideoClassification.from_pretrained(folder).eval()
        tokens = model.videomae(pixels).last_hidden_state
        features = model.fc_norm(tokens.mean(1)) if model.fc_norm is not None else tokens[:, 0]
        return dict(logits=model(pixels).logits.numpy(), features=features.numpy())
    model = transformers.VideoMAEModel.from_pretrained(folder).eval()
    return dict(tokens=model(pixels).last_hidden_state.numpy())


def _jax_outputs(model: nnx.Module, wanted: set[str], x, visible_idx, masked_idx) -> dict[str, np.ndarray]:
    """The ``wanted`` outputs of our model, in one jitted call (eval mode)."""
    model.eval()

    @nnx.jit
    def run(model, x, visible_idx, masked_idx):
        if isinstance(model, VideoMAEPretrainer):
            return dict(tokens=model.encoder(x), predictions=model(x, visible_idx, masked_idx))
        if wanted == {"tokens"}:
            return dict(tokens=model.encoder(x))
        features = model.features(x)
        return dict(logits=model.head(features), features=features)

    return {name: np.asarray(value) for name, value in run(model, x, visible_idx, masked_idx).items()}


def format_table(rows: list[Difference]) -> str:
    """One line per output: shape, max |ref|, max abs and max rel difference."""
    lines = [f"{'output':<12} {'shape':<18} {'max |torch|':>12} {'max abs diff':>13} {'max rel diff':>13}"]
    lines += [f"{row.output:<12} {str(list(row.shape)):<18} {row.torch_max:>12.4g} {row.max_abs:>13.3e} "
              f"{row.max_rel:>13.3e}" for row in rows]
    return "\n".join(lines)
