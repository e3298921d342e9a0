"""mmae_jax model -> PyTorch: the official VideoMAE state dict, or a transformers folder.

The inverse of ``converter``: the same name maps (``name_map.name_map``) read backwards, so
``export`` then ``convert`` gives back every parameter unchanged. Formats:

- ``pytorch``: a ``.pth`` holding the state dict of VideoMAE's ``modeling_finetune.py``
  ``VisionTransformer`` (classifier) or ``modeling_pretrain.py`` ``PretrainVisionTransformer``
  (pretrainer); needs torch;
- ``safetensors``: the same tensors in a ``.safetensors`` file (no torch needed);
- ``huggingface``: a folder for transformers' ``VideoMAEForVideoClassification`` (classifier)
  or ``VideoMAEForPreTraining`` (pretrainer): ``config.json`` (``id2label`` from the class
  names), ``model.safetensors`` and a ``README.md`` model card with the training config and
  results when the model comes from a training workdir.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mmae_jax.convert.families import TORCH_LAYER_NORM_EPS, SourceModel
from mmae_jax.convert.name_map import HF_V4_RENAMES, Mapping, name_map
from mmae_jax.errors import InputError
from mmae_jax.model import io as model_io
from mmae_jax.model.config import VideoMAEConfig
from mmae_jax.model.location import ModelChoice, resolve_checkpoint
from mmae_jax.model.paths import flat_params

FORMATS = ("pytorch", "safetensors", "huggingface")
HF_ARCHITECTURES = {"classifier": "VideoMAEForVideoClassification", "pretrainer": "VideoMAEForPreTraining"}
# The official code's LayerNorm epsilon (every norm).
OFFICIAL_LAYER_NORM_EPS = 1e-6


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
        layer_norm_eps=cfg.layer_norm_eps, qkv_bias=True,
        use_mean_pooling=cfg.use_mean_pooling and kind == "classifier",
        decoder_num_attention_heads=cfg.decoder_num_heads, decoder_hidden_size=cfg.decoder_embed_dim,
        decoder_num_hidden_layers=cfg.decoder_depth,
        decoder_intermediate_size=int(cfg.decoder_embed_dim * cfg.mlp_ratio), norm_pix_loss=cfg.norm_pix_loss,
        id2label={str(i): name for i, name in enumerate(names)}, label2id={name: i for i, name in enumerate(names)})


def epsilon_notes(cfg: VideoMAEConfig, family: str) -> list[str]:
    """Where the target model normalises with another LayerNorm epsilon than this model did."""
    if family == "huggingface":
        fixed = {"fc_norm / decoder norm": (cfg.head_layer_norm_eps, TORCH_LAYER_NORM_EPS)}
    else:
        fixed = {"blocks": (cfg.layer_norm_eps, OFFICIAL_LAYER_NORM_EPS),
                 "fc_norm / decoder norm": (cfg.head_layer_norm_eps, OFFICIAL_LAYER_NORM_EPS)}
    return [f"LayerNorm epsilon of {where}: {target:g} in the exported model, {ours:g} in training"
            for where, (ours, target) in fixed.items() if ours != target]


_FILE_NAMES = {"pytorch": "model.pth", "safetensors": "model.safetensors"}


def export_model(checkpoint: str | Path | ModelChoice, fmt: str, output: str | Path, *,
                 model: str | None = None) -> Path:
    """Read a model folder, or ``model`` of a training run folder (mmae_jax/model/location.py),
    or a ``ModelChoice``, and write ``output``."""
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
    choice = checkpoint if isinstance(checkpoint, ModelChoice) else resolve_checkpoint(checkpoint, model)
    model_dir = choice.directory
    model, cfg, kind = choice.load()
    _, _, metadata = choice.read_config()
    params = {path: np.asarray(value) for path, value in flat_params(model).items()}
    family = "huggingface" if fmt == "huggingface" else f"official-{'finetune' if kind == 'classifier' else 'pretrain'}"
    tensors = state_dict(params, cfg, kind, family)
    if fmt == "pytorch":
        _save_torch(tensors, output)
    elif fmt == "safetensors":
        _save_safetensors(tensors, output)
    else:
        output.mkdir(parents=True, exist_ok=True)
        class_names = list(metadata.get("class_names", []))
        _save_safetensors(tensors, output / "model.safetensors")
        (output / "config.json").write_text(json.dumps(hf_config_dict(cfg, kind, class_names), indent=2) + "\n")
        (output / "README.md").write_text(model_card(model_dir, cfg, kind, metadata, epsilon_notes(cfg, family)))
    return output


def _save_safetensors(tensors: dict[str, np.ndarray], path: Path) -> None:
    from safetensors.numpy import save_file
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"format": "pt"})


def _save_torch(tensors: dict[str, np.ndarray], path: Path) -> None:
    from mmae_jax.convert.torch_loading import require_torch
    torch = require_torch()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({name: torch.tensor(array) for name, array in tensors.items()}, path)


def model_card(model_dir: Path, cfg: VideoMAEConfig, kind: str, metadata: dict, notes: list[str]) -> str:
    """A README.md: what the model is, how to load it, its classes, training config and results."""
    workdir = Path(model_dir).absolute().parent
    results_path, config_path = workdir / "results.json", workdir / "config.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else None
    training_config = json.loads(config_path.read_text()) if config_path.is_file() else metadata.get("data")
    data = metadata.get("data", {})
    architecture = HF_ARCHITECTURES[kind]
    lines = [
        "---", "library_name: transformers", "pipeline_tag: video-classification" if kind == "classifier"
        else "tags: [videomae, pretraining]", "tags: [videomae, emotion-recognition, multimae-der, mmae_jax]", "---",
        "", f"# VideoMAE {cfg.variant} ({kind}) exported from mmae_jax", "",
        f"A {architecture} with a ViT-{cfg.variant} encoder ({cfg.depth} blocks, width {cfg.embed_dim}), "
        f"input {cfg.num_frames} frames of {cfg.img_size} x {cfg.img_size}, trained with mmae_jax "
        f"(MultiMAE-DER: face frames and audio-spectrogram images in one sequence).", "",
        "```python", "import transformers", "",
        f"model = transformers.{architecture}.from_pretrained(\"PATH_TO_THIS_FOLDER\").eval()",
        "# pixel_values: [batch, frames, 3, height, width], normalised as in training (below)",
        "```", "",
    ]
    if data:
        lines += [f"Input: dataset `{data.get('dataset')}`, fusion strategy `{data.get('strategy')}`, "
                  f"normalisation `{data.get('normalization')}`, builder config `{data.get('builder_config')}`.", ""]
    if metadata.get("class_names"):
        lines += ["Classes (id: name): " + ", ".join(f"{i}: {name}" for i, name in
                                                      enumerate(metadata["class_names"])), ""]
    if results and "test" in results:
        lines += ["## Results", "", "| evaluation | WAR % | UAR % | clips |", "|---|---|---|---|",
                  f"| test, last epoch | {results['test']['war']:.2f} | {results['test']['uar']:.2f} | "
                  f"{results['test']['num_examples']} |"]
        best = results.get("test_at_best_validation")
        if best:
            lines.append(f"| test, best validation (epoch {best['epoch']}) | {best['test']['war']:.2f} | "
                         f"{best['test']['uar']:.2f} | {best['test']['num_examples']} |")
        lines += ["", f"{results.get('dataset')} / {results.get('strategy')} / protocol {results.get('protocol')} "
                      f"fold {results.get('fold')}; this export is `{Path(model_dir).name}` at step "
                      f"{metadata.get('step')}.", ""]
    if notes:
        lines += ["## Differences from training", ""] + [f"- {note}" for note in notes] + [""]
    if training_config:
        lines += ["## Training config", "", "```json", json.dumps(training_config, indent=2, sort_keys=True),
                  "```", ""]
    lines += ["## Model config (mmae_jax)", "", "```json", json.dumps(cfg.to_dict(), indent=2, sort_keys=True),
              "```", ""]
    return "\n".join(lines)
