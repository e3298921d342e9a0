"""The README.md model card of a Hugging Face export: what the model is, how to run it, what it reads.

The card opens with the YAML front matter the Hugging Face hub reads (license, library,
base model when known, tags, pipeline), then: how to load the folder with transformers' Auto
classes, the input (layout ``[B, T, C, H, W]``, value range and normalisation, what the frames
are), the classes, the test results of a training workdir, where the exported model computes
differently from training, the license, and the training and model configs. Paths of the
machine that trained the model (``data_dir``, ``split_dir``, ``init``, any absolute path) are
left out of the configs shown.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from mmae_jax.config.choices import RANDOM_INIT
from mmae_jax.convert.torch_loading import is_hub_id
from mmae_jax.errors import UserError
from mmae_jax.model import io as model_io
from mmae_jax.model.config import VideoMAEConfig
from mmae_jax.model.location import resolve_model_dir

HF_ARCHITECTURES = {"classifier": "VideoMAEForVideoClassification", "pretrainer": "VideoMAEForPreTraining"}
# The module of each kind whose LayerNorm transformers builds with PyTorch's default epsilon.
HEAD_NORMS = {"classifier": "fc_norm", "pretrainer": "decoder.norm"}
# Config fields that hold a path on the machine that trained the model.
PATH_FIELDS = ("data_dir", "split_dir", "init")
LOCAL_PATH = "<local path>"
# How many runs' ``init`` are followed back to the checkpoint the weights started from.
MAX_INIT_HOPS = 4


@dataclasses.dataclass(frozen=True)
class CardInput:
    """What the exported folder holds beside the weights, as the card describes it."""

    layer_norm_note: str | None      # the head norm's epsilon that differs from transformers', or None
    normalization: str | None        # the name in mmae_jax.data.normalize, None when not recorded
    mean_std: tuple[tuple[float, ...], tuple[float, ...]] | None


def training_workdir(model_dir: Path, metadata: dict[str, Any]) -> Path | None:
    """The training workdir a model directory was written into, or None (e.g. a converted model)."""
    return Path(model_dir).absolute().parent if metadata.get("source") == "training" else None


def training_config(model_dir: Path, metadata: dict[str, Any]) -> dict[str, Any] | None:
    """The saved experiment config of the run that wrote ``model_dir``, or None."""
    workdir = training_workdir(model_dir, metadata)
    path = workdir / "config.json" if workdir else None
    return json.loads(path.read_text()) if path and path.is_file() else None


def base_checkpoint(model_dir: Path, metadata: dict[str, Any]) -> str | None:
    """The Hugging Face model id the weights started from, or None (random start, a local file).

    A converted model names its source; a trained one is followed through its run's ``init``.
    """
    for _ in range(MAX_INIT_HOPS):
        source = str(metadata.get("source", ""))
        if source != "training":
            return source.partition("@")[0] if source and is_hub_id(source) else None
        init = (training_config(model_dir, metadata) or {}).get("init", "")
        if not init or init == RANDOM_INIT:
            return None
        try:
            model_dir = resolve_model_dir(init, option="init")
            _, _, metadata = model_io.read_config(model_dir)
        except (UserError, OSError, ValueError):
            return None
    return None


def started_from_random(model_dir: Path, metadata: dict[str, Any]) -> bool:
    """True for weights a run trained from a random start (no ``init``)."""
    config = training_config(model_dir, metadata)
    return config is not None and config.get("init", "") in ("", RANDOM_INIT)


def portable(value: Any, key: str = "") -> Any:
    """``value`` (a config) with the paths of the training machine replaced by ``<local path>``."""
    if isinstance(value, dict):
        return {name: portable(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [portable(item) for item in value]
    if isinstance(value, str) and value and value != RANDOM_INIT and (key in PATH_FIELDS or os.path.isabs(value)):
        return LOCAL_PATH
    return value


def front_matter(kind: str, base_model: str | None) -> list[str]:
    """The YAML header the Hugging Face hub reads (values written as JSON, which YAML reads)."""
    tags = ["videomae", "emotion-recognition", "multimae-der", "mmae_jax"]
    tags += ["pretraining"] if kind == "pretrainer" else []
    fields = dict(license="apache-2.0", library_name="transformers", base_model=base_model, tags=tags,
                  pipeline_tag="video-classification" if kind == "classifier" else None)
    return ["---"] + [f"{name}: {json.dumps(value)}" for name, value in fields.items() if value] + ["---"]


def usage(kind: str, card_input: CardInput, size: int, frames: int) -> list[str]:
    """The code block that loads the folder and runs it on one clip."""
    lines = ["## Use", "", "```python", "import transformers", ""]
    if kind == "classifier":
        lines += ['processor = transformers.AutoImageProcessor.from_pretrained("PATH_TO_THIS_FOLDER")',
                  'model = transformers.AutoModelForVideoClassification.from_pretrained("PATH_TO_THIS_FOLDER").eval()']
    else:
        lines += ['processor = transformers.AutoImageProcessor.from_pretrained("PATH_TO_THIS_FOLDER")',
                  f'model = transformers.{HF_ARCHITECTURES[kind]}.from_pretrained("PATH_TO_THIS_FOLDER").eval()']
    if card_input.layer_norm_note:
        lines.append(f"model.{HEAD_NORMS[kind]}.eps = model.config.head_layer_norm_eps   # the epsilon of training")
    lines += [f"# frames: {frames} uint8 images [{size}, {size}, 3] with pixel values 0..255 (see Input)",
              'pixel_values = processor(list(frames), return_tensors="pt")["pixel_values"]'
              f"   # [1, {frames}, 3, {size}, {size}]"]
    if kind == "classifier":
        lines.append("logits = model(pixel_values).logits")
    else:
        lines.append("outputs = model(pixel_values, bool_masked_pos=mask)   # mask: [1, tokens] bool, True = hidden")
    return lines + ["```", ""]


def input_section(cfg: VideoMAEConfig, data: dict[str, Any], card_input: CardInput) -> list[str]:
    """Layout, value range and what the frames are."""
    t, s = cfg.num_frames, cfg.img_size
    lines = ["## Input", "",
             f"- Layout: `pixel_values` float32 `[batch, {t}, 3, {s}, {s}]`, transformers' `[B, T, C, H, W]` "
             f"(`mmae-jax forward --layout ntchw` reads the same array)."]
    if card_input.mean_std:
        mean, std = card_input.mean_std
        lines.append(f"- Values: `(x / 255 - mean) / std` per channel of pixel values `x` in 0..255, mean "
                     f"`{list(mean)}`, std `{list(std)}` (`{card_input.normalization}`). "
                     f"`preprocessor_config.json` holds them: `AutoImageProcessor` turns uint8 frames into "
                     f"this input (resizing frames of another size to {s} x {s}, bilinear).")
    else:
        lines.append("- Values: normalised as the checkpoint this model was converted from was; the model "
                     "folder records no normalisation, so this export has no `preprocessor_config.json`.")
    if data.get("strategy"):
        builder = f" (builder config `{data['builder_config']}`)" if data.get("builder_config") else ""
        lines.append(f"- Frames: the {t} frames of a fused clip of dataset `{data.get('dataset')}`{builder}: face "
                     f"frames and audio-spectrogram images arranged by the fusion strategy `{data['strategy']}`. "
                     f"`mmae-jax predict --dump-inputs DIR` writes the frames of media files (a picture) and "
                     f"their normalised model input (`[T, H, W, C]` .npy).")
    return lines + [""]


def results_section(results: dict[str, Any], model_dir: Path, metadata: dict[str, Any]) -> list[str]:
    """The test results of the training workdir."""
    lines = ["## Results", "", "| evaluation | WAR % | UAR % | clips |", "|---|---|---|---|",
             f"| test, last epoch | {results['test']['war']:.2f} | {results['test']['uar']:.2f} | "
             f"{results['test']['num_examples']} |"]
    best = results.get("test_at_best_validation")
    if best:
        lines.append(f"| test, best validation (epoch {best['epoch']}) | {best['test']['war']:.2f} | "
                     f"{best['test']['uar']:.2f} | {best['test']['num_examples']} |")
    return lines + ["", f"{results.get('dataset')} / {results.get('strategy')} / protocol {results.get('protocol')} "
                        f"fold {results.get('fold')}; this export is `{Path(model_dir).name}` at step "
                        f"{metadata.get('step')}.", ""]


def license_section(base_model: str | None, from_random: bool, dataset: str | None) -> list[str]:
    """Apache-2.0 for the code; the weights' own terms follow where they came from."""
    if base_model:
        weights = f"come from [`{base_model}`](https://huggingface.co/{base_model}) and follow its terms"
    elif from_random:
        weights = "were trained from a random start"
    else:
        weights = "follow the terms of the checkpoint they were trained or converted from"
    data = f"; the terms of the training data (`{dataset}`) may also apply" if dataset else ""
    return ["## License", "", f"The code that trained and exported this model (mmae_jax) is licensed under "
                              f"Apache-2.0. The weights {weights}{data}.", ""]


def model_card(model_dir: Path, cfg: VideoMAEConfig, kind: str, metadata: dict[str, Any],
               card_input: CardInput) -> str:
    """The README.md text of a Hugging Face export of ``model_dir``."""
    workdir = training_workdir(model_dir, metadata)
    results_path = workdir / "results.json" if workdir else None
    results = json.loads(results_path.read_text()) if results_path and results_path.is_file() else None
    config = training_config(model_dir, metadata) or metadata.get("data")
    data = metadata.get("data", {})
    base_model = base_checkpoint(model_dir, metadata)
    origin = ("trained with mmae_jax (MultiMAE-DER: face frames and audio-spectrogram images in one sequence)"
              if workdir else f"converted by mmae_jax from {f'`{base_model}`' if base_model else 'a local checkpoint'}")
    lines = front_matter(kind, base_model) + [
        "", f"# VideoMAE {cfg.variant} ({kind}) exported from mmae_jax", "",
        f"A transformers `{HF_ARCHITECTURES[kind]}` with a ViT-{cfg.variant} encoder ({cfg.depth} blocks, width "
        f"{cfg.embed_dim}), input {cfg.num_frames} frames of {cfg.img_size} x {cfg.img_size}, {origin}.", "",
    ] + usage(kind, card_input, cfg.img_size, cfg.num_frames) + input_section(cfg, data, card_input)
    if metadata.get("class_names"):
        lines += ["Classes (id: name): " + ", ".join(f"{i}: {name}" for i, name in
                                                      enumerate(metadata["class_names"])), ""]
    if results and "test" in results:
        lines += results_section(results, model_dir, metadata)
    if card_input.layer_norm_note:
        lines += ["## Differences from training", "", f"- {card_input.layer_norm_note}", ""]
    lines += license_section(base_model, started_from_random(model_dir, metadata), data.get("dataset"))
    if config:
        lines += ["## Training config", "", "```json", json.dumps(portable(config), indent=2, sort_keys=True),
                  "```", ""]
    lines += ["## Model config (mmae_jax)", "", "```json", json.dumps(cfg.to_dict(), indent=2, sort_keys=True),
              "```", ""]
    return "\n".join(lines)
