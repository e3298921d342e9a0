"""mmae_jax model -> PyTorch: the official VideoMAE state dict, or a transformers folder.

The inverse of ``converter``: the same name maps (``name_map.name_map``) read backwards, so
``export`` then ``convert`` gives back every parameter unchanged. Formats:

- ``pytorch``: a ``.pth`` holding the state dict of VideoMAE's ``modeling_finetune.py``
  ``VisionTransformer`` (classifier) or ``modeling_pretrain.py`` ``PretrainVisionTransformer``
  (pretrainer); needs torch;
- ``safetensors``: the same tensors in a ``.safetensors`` file (no torch needed);
- ``huggingface``: a folder for transformers' ``VideoMAEForVideoClassification`` (classifier)
  or ``VideoMAEForPreTraining`` (pretrainer): ``config.json`` (``id2label`` from the class
  names, the blocks' LayerNorm epsilon as ``layer_norm_eps`` and the head norm's as
  ``head_layer_norm_eps``), ``model.safetensors``, ``preprocessor_config.json`` (the
  normalisation the model was trained with, for ``AutoImageProcessor``) and a ``README.md``
  model card (``model_card``).

transformers builds ``fc_norm`` and the decoder's ``norm`` with PyTorch's default epsilon
(1e-5) whatever its config says; a model trained with another one computes slightly
differently there until ``model.fc_norm.eps`` is set from ``config.head_layer_norm_eps``,
which the card says and shows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mmae_jax.convert.families import TORCH_LAYER_NORM_EPS, SourceModel
from mmae_jax.convert.model_card import HF_ARCHITECTURES, HEAD_NORMS, CardInput, model_card
from mmae_jax.convert.name_map import HF_V4_RENAMES, Mapping, name_map
from mmae_jax.convert.torch_loading import require_torch
from mmae_jax.data.normalize import NORMALIZATIONS
from mmae_jax.errors import InputError
from mmae_jax.model import io as model_io
from mmae_jax.model.config import VideoMAEConfig
from mmae_jax.model.location import ModelChoice, resolve_checkpoint
from mmae_jax.model.paths import flat_params

FORMATS = ("pytorch", "safetensors", "huggingface")


def layout(cfg: VideoMAEConfig, kind: str, family: str) -> SourceModel:
    """The checkpoint ``family`` that holds a model of ``cfg`` and ``kind`` (what ``convert`` reads)."""
    hf_config = hf_config_dict(cfg, kind, []) if family == "huggingface" else None
    return SourceModel(
        family=family, embed_dim=cfg.embed_dim, depth=cfg.depth, mlp_ratio=cfg.mlp_ratio, in_chans=cfg.in_chans,
        tubelet_size=cfg.tubelet_size, patch_size=cfg.patch_size,
        use_mean_pooling=cfg.use_mean_pooling and kind == "classifier", layer_scale=cfg.init_values > 0,
        num_classes=cfg.num_classes if kind == "classifier" else None,
        decoder=(cfg.decoder_embed_dim, cfg.decoder_depth) if kind == "pretrainer" else None,
        hf_config=hf_config)


def invert(mapping: Mapping, value: np.ndarray) -> dict[str, np.ndarray]:
    """The source tensors (PyTorch layout) that ``mapping`` turns into ``value``."""
    if mapping.transform == "copy":
        arrays = [value]
    elif mapping.transform == "linear":
        arrays = [value.T]
    elif mapping.transform == "conv3d":                     # [t, p, p, C, D] -> [D, C, t, p, p]
        arrays = [value.transpose(4, 3, 0, 1, 2)]
    elif mapping.transform == "qkv":                        # [D, 3D] -> 3 x [D, D] (out, in)
        arrays = [part.T for part in np.split(value, 3, axis=1)]
    elif mapping.transform == "zeros":
        return {}
    else:
        raise ValueError(f"no inverse for transform {mapping.transform!r}")
    return {name: np.ascontiguousarray(array, dtype=np.float32) for name, array in zip(mapping.sources, arrays)}


def state_dict(params: dict[str, np.ndarray], cfg: VideoMAEConfig, kind: str, family: str) -> dict[str, np.ndarray]:
    """Our dotted parameters -> the ``family``'s state dict; every parameter must find a place."""
    if family == "huggingface" and cfg.init_values > 0:
        raise InputError("transformers' VideoMAE has no layer scale (gamma_1/gamma_2), this model has",
                         "export --format pytorch or safetensors")
    tensors: dict[str, np.ndarray] = {}
    placed = set()
    for mapping in name_map(layout(cfg, kind, family)):
        if mapping.target in params:
            tensors.update(invert(mapping, np.asarray(params[mapping.target])))
            placed.add(mapping.target)
    left = sorted(set(params) - placed)
    if left:
        raise InputError(f"the {family} layout has no place for {', '.join(left)}",
                         "this model's head or norm is not VideoMAE's; keep it as an mmae_jax model directory")
    if family == "huggingface":      # transformers v4's names, which v5 also reads (renaming on load)
        tensors = {_v4_name(name): value for name, value in tensors.items()}
    return tensors


def _v4_name(name: str) -> str:
    for v4, v5 in HF_V4_RENAMES:
        name = name.replace(v5, v4)
    return name


def hf_config_dict(cfg: VideoMAEConfig, kind: str, class_names: list[str]) -> dict[str, Any]:
    """transformers ``VideoMAEConfig`` fields of the model (``id2label`` from ``class_names``)."""
    names = list(class_names) or [f"LABEL_{i}" for i in range(cfg.num_classes)]
    return dict(
        architectures=[HF_ARCHITECTURES[kind]], model_type="videomae", torch_dtype="float32",
        image_size=cfg.img_size, patch_size=cfg.patch_size, num_channels=cfg.in_chans, num_frames=cfg.num_frames,
        tubelet_size=cfg.tubelet_size, hidden_size=cfg.embed_dim, num_hidden_layers=cfg.depth,
        num_attention_heads=cfg.num_heads, intermediate_size=int(cfg.embed_dim * cfg.mlp_ratio),
        hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.02,
        layer_norm_eps=cfg.layer_norm_eps, head_layer_norm_eps=cfg.head_layer_norm_eps, qkv_bias=True,
        use_mean_pooling=cfg.use_mean_pooling and kind == "classifier",
        decoder_num_attention_heads=cfg.decoder_num_heads, decoder_hidden_size=cfg.decoder_embed_dim,
        decoder_num_hidden_layers=cfg.decoder_depth,
        decoder_intermediate_size=int(cfg.decoder_embed_dim * cfg.mlp_ratio), norm_pix_loss=cfg.norm_pix_loss,
        id2label={str(i): name for i, name in enumerate(names)}, label2id={name: i for i, name in enumerate(names)})


def head_epsilon_note(cfg: VideoMAEConfig, kind: str) -> str | None:
    """What differs in transformers' head norm (built with PyTorch's default epsilon), or None."""
    if cfg.head_layer_norm_eps == TORCH_LAYER_NORM_EPS:
        return None
    return (f"LayerNorm epsilon of fc_norm / decoder norm: {TORCH_LAYER_NORM_EPS:g} in the exported model, "
            f"{cfg.head_layer_norm_eps:g} in training. transformers builds this norm with its default "
            f"whatever config.json says; `model.{HEAD_NORMS[kind]}.eps = model.config.head_layer_norm_eps` "
            f"after loading (as above) makes it compute as in training.")


_FILE_NAMES = {"pytorch": "model.pth", "safetensors": "model.safetensors"}
# PIL's number for bilinear resampling, as transformers' image processors store it.
PIL_BILINEAR = 2


def export_model(checkpoint: str | Path | ModelChoice, fmt: str, output: str | Path, *,
                 model: str | None = None) -> Path:
    """Read a model folder, or ``model`` of a training run folder (mmae_jax/model/location.py),
    or a ``ModelChoice``, and write ``output``.

    Every file is written with the permissions of a new file under the user's umask.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}", f"choose one of {', '.join(FORMATS)}")
    output = Path(output)
    if output.exists() and (output.is_file() or any(output.iterdir())):
        raise InputError(f"{output} exists", "choose a new output path; nothing is overwritten")
    if output.is_dir() and fmt != "huggingface":
        raise InputError(f"{output} is a folder, but --format {fmt} writes one file",
                         f"give a file name, e.g. {output / _FILE_NAMES[fmt]}")
    if not output.parent.is_dir():
        raise InputError(f"the folder of {output} does not exist", "create it first")
    torch = require_torch("writing a PyTorch .pth", "export --format safetensors, which needs no torch") \
        if fmt == "pytorch" else None
    choice = checkpoint if isinstance(checkpoint, ModelChoice) else resolve_checkpoint(checkpoint, model)
    model_dir = choice.directory
    model, cfg, kind = choice.load()
    _, _, metadata = choice.read_config()
    params = {path: np.asarray(value) for path, value in flat_params(model).items()}
    family = "huggingface" if fmt == "huggingface" else f"official-{'finetune' if kind == 'classifier' else 'pretrain'}"
    tensors = state_dict(params, cfg, kind, family)
    if fmt == "pytorch":
        torch.save({name: torch.tensor(array) for name, array in tensors.items()}, output)
    elif fmt == "safetensors":
        _save_safetensors(tensors, output)
    else:
        write_huggingface(output, tensors, model_dir, cfg, kind, metadata)
    return output


def write_huggingface(output: Path, tensors: dict[str, np.ndarray], model_dir: Path, cfg: VideoMAEConfig,
                      kind: str, metadata: dict[str, Any]) -> None:
    """``output/``: model.safetensors, config.json, preprocessor_config.json (when the model
    records its normalisation) and the README.md model card, each made before any is written."""
    normalization = metadata.get("data", {}).get("normalization")
    card_input = CardInput(layer_norm_note=head_epsilon_note(cfg, kind), normalization=normalization,
                           mean_std=recipe_mean_std(normalization, model_dir) if normalization else None)
    texts = {"config.json": json.dumps(hf_config_dict(cfg, kind, list(metadata.get("class_names", []))), indent=2)}
    if card_input.mean_std:
        texts["preprocessor_config.json"] = json.dumps(preprocessor_config(cfg, *card_input.mean_std), indent=2)
    texts["README.md"] = model_card(model_dir, cfg, kind, metadata, card_input)
    output.mkdir(parents=True, exist_ok=True)
    _save_safetensors(tensors, output / "model.safetensors")
    for name, text in texts.items():
        (output / name).write_text(text.rstrip("\n") + "\n")


def recipe_mean_std(normalization: str, model_dir: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The per-channel ``(mean, std)`` of the normalisation a model was trained with."""
    if normalization not in NORMALIZATIONS:
        raise InputError(f"{model_dir}/config.json: unknown normalization {normalization!r}",
                         f"the model directory is damaged; it should name one of {', '.join(NORMALIZATIONS)}")
    mean, std = NORMALIZATIONS[normalization]
    return tuple(mean), tuple(std)


def preprocessor_config(cfg: VideoMAEConfig, mean: tuple[float, ...], std: tuple[float, ...]) -> dict[str, Any]:
    """transformers' ``VideoMAEImageProcessor`` settings: uint8 frames -> ``(x / 255 - mean) / std``.

    Frames of another size are resized to ``img_size`` x ``img_size`` (bilinear, no crop), as
    the evaluation pipeline resizes faces; frames of the model's size pass unchanged.
    """
    size = {"height": cfg.img_size, "width": cfg.img_size}
    return dict(image_processor_type="VideoMAEImageProcessor", do_resize=True, size=size, resample=PIL_BILINEAR,
                do_center_crop=False, crop_size=size, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
                image_mean=list(mean), image_std=list(std))


def _save_safetensors(tensors: dict[str, np.ndarray], path: Path) -> None:
    """Write through ``open`` (safetensors' own ``save_file`` leaves a file of mode 0600)."""
    from safetensors.numpy import save
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(save(tensors, metadata={"format": "pt"}))
