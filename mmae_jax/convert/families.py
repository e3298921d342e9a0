"""Which checkpoint family a state dict belongs to, and the model config its shapes imply.

Families:

- ``official-finetune``: VideoMAE's ``modeling_finetune.py`` (``patch_embed.proj``, ``blocks.N``,
  ``fc_norm`` or ``norm``, ``head``);
- ``official-pretrain``: ``modeling_pretrain.py`` (``encoder.*``, ``encoder_to_decoder``,
  ``mask_token``, ``decoder.*``), also MAE-DFER-style checkpoints of the same layout;
- ``huggingface``: transformers' ``VideoMAEForVideoClassification`` / ``VideoMAEForPreTraining``
  / ``VideoMAEModel`` (names of transformers v4 and v5; see ``name_map.normalise_hf_names``).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np

from mmae_jax.convert.torch_loading import CheckpointError
from mmae_jax.model.config import VARIANTS, VideoMAEConfig

FAMILIES = ("official-finetune", "official-pretrain", "huggingface")
# Layer scale's initial value only matters for fresh models; converted ones carry gamma_1/gamma_2.
LAYER_SCALE_INIT = 0.1


@dataclasses.dataclass(frozen=True)
class SourceModel:
    """What a checkpoint holds, read from its names and shapes (and a Hugging Face config)."""

    family: str
    embed_dim: int
    depth: int
    mlp_ratio: float
    in_chans: int
    tubelet_size: int
    patch_size: int
    use_mean_pooling: bool
    layer_scale: bool
    num_classes: int | None            # None: no classification head
    decoder: tuple[int, int] | None    # (decoder_embed_dim, decoder_depth), None: no decoder
    hf_config: dict[str, Any] | None

    @property
    def has_fc_norm(self) -> bool:
        return self.num_classes is not None and self.use_mean_pooling


def detect_family(tensors: dict[str, np.ndarray], hf_config: dict | None) -> str:
    """The family of a state dict whose names have gone through ``name_map.normalise_hf_names``."""
    if hf_config is not None or any(key.startswith("videomae.") for key in tensors):
        return "huggingface"
    if "encoder.patch_embed.proj.weight" in tensors:
        return "official-pretrain"
    if "patch_embed.proj.weight" in tensors:
        return "official-finetune"
    raise CheckpointError("not a VideoMAE checkpoint: found none of 'patch_embed.proj.weight', "
                          "'encoder.patch_embed.proj.weight', 'videomae.embeddings...'; first keys: "
                          f"{sorted(tensors)[:8]}")


def describe_source(tensors: dict[str, np.ndarray], family: str, hf_config: dict | None) -> SourceModel:
    """Sizes and structure of the checkpoint's model, from the shapes of its tensors."""
    if family == "huggingface":
        encoder, patch_key, block, fc1 = "videomae.", "videomae.embeddings.patch_embeddings.projection.weight", \
            "videomae.encoder.layer.", "intermediate.dense.weight"
        head_key, decoder_block, decoder_norm = "classifier.weight", "decoder.decoder_layers.", "decoder.norm.weight"
    else:
        encoder = "encoder." if family == "official-pretrain" else ""
        patch_key, block, fc1 = f"{encoder}patch_embed.proj.weight", f"{encoder}blocks.", "mlp.fc1.weight"
        head_key, decoder_block, decoder_norm = "head.weight", "decoder.blocks.", "decoder.norm.weight"
    if patch_key not in tensors:
        raise CheckpointError(f"{family} checkpoint without its patch embedding {patch_key!r}")
    embed_dim, in_chans, tubelet, patch, _ = tensors[patch_key].shape
    depth = _count_blocks(tensors, block)
    fc1_key = f"{block}0.{fc1}"
    hidden = tensors[fc1_key].shape[0] if fc1_key in tensors else 4 * embed_dim
    decoder = None
    if decoder_norm in tensors:
        decoder = (int(tensors[decoder_norm].shape[0]), _count_blocks(tensors, decoder_block))
    has_head = head_key in tensors
    head_bias = head_key.replace(".weight", ".bias")
    if not has_head and head_bias in tensors:
        raise CheckpointError(f"missing key {head_key}: the checkpoint has {head_bias} "
                              f"{list(tensors[head_bias].shape)} but not the head's weight",
                              "the checkpoint is incomplete; download or save it again")
    return SourceModel(
        family=family, embed_dim=int(embed_dim), depth=depth, mlp_ratio=hidden / embed_dim,
        in_chans=int(in_chans), tubelet_size=int(tubelet), patch_size=int(patch),
        use_mean_pooling=("fc_norm.weight" in tensors) or not has_head,
        layer_scale=f"{block}0.gamma_1" in tensors,
        num_classes=int(tensors[head_key].shape[0]) if has_head else None,
        decoder=decoder, hf_config=hf_config)


def target_config(source: SourceModel, *, variant: str | None = None, num_classes: int | None = None,
                  num_frames: int | None = None, img_size: int | None = None) -> VideoMAEConfig:
    """The model config to convert into.

    Sizes come from ``variant`` when given (a checkpoint of another size then fails the
    shape check), else from the checkpoint; the number of heads, which no tensor shows,
    from the Hugging Face config or the variant whose width and depth match.
    """
    hf = source.hf_config or {}
    sizes = dict(VARIANTS[variant]) if variant is not None else _sizes_from_source(source)
    if variant is None:
        variant = _matching_variant(source) or "custom"
    if variant not in VARIANTS and variant != "custom":
        raise CheckpointError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
    return VideoMAEConfig(
        variant=variant, **sizes,
        mlp_ratio=source.mlp_ratio,
        num_classes=num_classes or source.num_classes or VideoMAEConfig.num_classes,
        num_frames=num_frames or hf.get("num_frames", VideoMAEConfig.num_frames),
        img_size=img_size or _square(hf.get("image_size", VideoMAEConfig.img_size)),
        patch_size=source.patch_size, tubelet_size=source.tubelet_size, in_chans=source.in_chans,
        use_mean_pooling=source.use_mean_pooling,
        init_values=LAYER_SCALE_INIT if source.layer_scale else 0.0,
        norm_pix_loss=hf.get("norm_pix_loss", VideoMAEConfig.norm_pix_loss),
        **_layer_norm_epsilons(source),
    )


# transformers' VideoMAEConfig default, and nn.LayerNorm's default (its fc_norm, decoder norm).
HF_LAYER_NORM_EPS, TORCH_LAYER_NORM_EPS = 1e-12, 1e-5


def _layer_norm_epsilons(source: SourceModel) -> dict[str, float]:
    """The epsilons the source model was run with (see ``VideoMAEConfig.layer_norm_eps``)."""
    if source.family != "huggingface":
        return {}            # the official code: 1e-6 everywhere, the config's default
    hf = source.hf_config or {}
    return dict(layer_norm_eps=float(hf.get("layer_norm_eps", HF_LAYER_NORM_EPS)),
                head_layer_norm_eps=TORCH_LAYER_NORM_EPS)


def _sizes_from_source(source: SourceModel) -> dict[str, int]:
    hf = source.hf_config
    if hf is not None:
        return dict(embed_dim=hf["hidden_size"], depth=hf["num_hidden_layers"], num_heads=hf["num_attention_heads"],
                    decoder_embed_dim=hf.get("decoder_hidden_size", VideoMAEConfig.decoder_embed_dim),
                    decoder_depth=hf.get("decoder_num_hidden_layers", VideoMAEConfig.decoder_depth),
                    decoder_num_heads=hf.get("decoder_num_attention_heads", VideoMAEConfig.decoder_num_heads))
    name = _matching_variant(source)
    if name is None:
        raise CheckpointError(
            f"the checkpoint's encoder (width {source.embed_dim}, depth {source.depth}"
            f"{', decoder width %d, depth %d' % source.decoder if source.decoder else ''}) matches no "
            f"variant in {sorted(VARIANTS)}, so its number of heads is unknown; pass --variant")
    return dict(VARIANTS[name])


def _matching_variant(source: SourceModel) -> str | None:
    for name, sizes in VARIANTS.items():
        if (sizes["embed_dim"], sizes["depth"]) != (source.embed_dim, source.depth):
            continue
        if source.decoder is None or source.decoder == (sizes["decoder_embed_dim"], sizes["decoder_depth"]):
            return name
    return None


def _count_blocks(tensors: dict[str, np.ndarray], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    indices = {int(match.group(1)) for key in tensors if (match := pattern.match(key))}
    return max(indices) + 1 if indices else 0


def _square(size) -> int:
    if isinstance(size, (list, tuple)):
        if len(set(size)) != 1:
            raise CheckpointError(f"non-square image_size {size} is not supported")
        return int(size[0])
    return int(size)
