"""Export to PyTorch / Hugging Face: logits equal to an independent PyTorch VideoMAE and to
transformers, and export -> convert gives back every parameter unchanged."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from mmae_jax.cli import main  # noqa: E402
from mmae_jax.cli.forward import _read_clips  # noqa: E402
from mmae_jax.convert import torch_reference as reference  # noqa: E402
from mmae_jax.convert.converter import convert  # noqa: E402
from mmae_jax.convert.export import export_model  # noqa: E402
from mmae_jax.convert.model_card import LOCAL_PATH  # noqa: E402
from mmae_jax.convert.torch_loading import load_checkpoint  # noqa: E402
from mmae_jax.data.normalize import mean_std, to_model_input  # noqa: E402
from mmae_jax.errors import InputError  # noqa: E402
from mmae_jax.model import VideoMAEConfig  # noqa: E402
from mmae_jax.model.paths import flat_params  # noqa: E402
from mmae_jax.model import io as model_io  # noqa: E402

TOLERANCE = 1e-4
CLASSES = ["calm", "happy", "sad"]


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)


def _random_model(cfg: VideoMAEConfig, kind: str, seed: int = 0):
    """A model whose every parameter is random (norm scales near 1), so that any misplaced tensor shows."""
    model = model_io.build_model(cfg, kind, seed=seed)
    rng = np.random.default_rng(seed)
    shapes = model_io.param_shapes(model)
    model_io.assign_params(model, {path: (1.0 if path.endswith(".scale") else 0.0) + rng.normal(scale=0.1, size=shape)
                                   for path, shape in shapes.items()})
    return model


def _model_dir(tmp_path, cfg, kind="classifier", normalization="imagenet_mean_std0225", init=""):
    """A model directory inside a training-like workdir (config.json and results.json beside it),
    with the metadata training writes (its data config holds the absolute ``data_dir``)."""
    workdir = tmp_path / "run"
    model = _random_model(cfg, kind)
    data = dict(dataset="synthetic", strategy="fslf", normalization=normalization, builder_config="",
                data_dir=str(tmp_path.absolute() / "tfds"), split_dir="")
    model_io.save_model(workdir / "final_model", model, cfg, kind=kind,
                        metadata=dict(class_names=CLASSES, data=data, step=7, source="training"))
    (workdir / "config.json").write_text(json.dumps({"data": data, "batch_size": 8, "init": init}))
    (workdir / "results.json").write_text(json.dumps(dict(
        dataset="synthetic", strategy="fslf", protocol="kfold", fold=0,
        test=dict(war=61.25, uar=60.5, num_examples=80), test_at_best_validation=None)))
    return workdir / "final_model", model


def _tiny(**changes) -> VideoMAEConfig:
    return VideoMAEConfig.from_variant("tiny", num_classes=len(CLASSES), num_frames=4, img_size=32, **changes)


def _jax_logits(model, x: np.ndarray) -> np.ndarray:
    model.eval()
    return np.asarray(model(x))


def _input(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(2, 4, 32, 32, 3)).astype(np.float32)   # [B, T, H, W, C]


def _flat(model) -> dict[str, np.ndarray]:
    return {path: np.asarray(value) for path, value in flat_params(model).items()}


class _Shared:
    """The tiny classifier's and pretrainer's model directories (``_model_dir`` of ``_tiny()``)
    and their exports, each made once for the tests of this module that only read them; a test
    that writes (an export of its own, a refused export, other permissions) writes in its own
    ``tmp_path``."""

    def __init__(self, root):
        self.root = root
        self._dirs, self._exports = {}, {}

    def model_dir(self, kind: str = "classifier", normalization: str = "imagenet_mean_std0225"):
        """``(model_dir, model)`` of ``_model_dir(ROOT/kind-normalization, _tiny(), kind, normalization)``."""
        if (kind, normalization) not in self._dirs:
            self._dirs[kind, normalization] = _model_dir(self.root / f"{kind}-{normalization}", _tiny(), kind,
                                                         normalization)
        return self._dirs[kind, normalization]

    def export(self, kind: str, fmt: str, name: str):
        """The ``export_model`` of ``model_dir(kind)`` in format ``fmt`` as ROOT/kind-fmt/``name``."""
        if (kind, fmt) not in self._exports:
            (self.root / f"{kind}-{fmt}").mkdir()
            self._exports[kind, fmt] = export_model(self.model_dir(kind)[0], fmt, self.root / f"{kind}-{fmt}" / name)
        return self._exports[kind, fmt]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return _Shared(tmp_path_factory.mktemp("shared_exports"))


def test_pytorch_export_matches_the_independent_reference(shared, tmp_path):
    model_dir, model = shared.model_dir()
    path = export_model(model_dir.parent, "pytorch", tmp_path / "model.pth")   # the workdir: its final_model
    torch_model = reference.VisionTransformer(_tiny())
    torch_model.load_state_dict(torch.load(path), strict=True)
    x = _input()
    with torch.no_grad():
        theirs = torch_model.eval()(torch.from_numpy(x).permute(0, 4, 1, 2, 3)).numpy()
    ours = _jax_logits(model, x)
    assert np.abs(theirs).max() > 0.1
    np.testing.assert_allclose(theirs, ours, atol=TOLERANCE, rtol=0)


def test_huggingface_export_matches_transformers(tmp_path):
    cfg = _tiny(layer_norm_eps=1e-12, head_layer_norm_eps=1e-5)         # transformers' epsilons
    model_dir, model = _model_dir(tmp_path, cfg)
    assert main(["export", "--checkpoint", str(model_dir), "--format", "huggingface",
                 "--output", str(tmp_path / "hf")]) == 0
    hf_model = transformers.VideoMAEForVideoClassification.from_pretrained(tmp_path / "hf").eval()
    x = _input()
    with torch.no_grad():
        theirs = hf_model(torch.from_numpy(x).permute(0, 1, 4, 2, 3)).logits.numpy()   # [B, T, C, H, W]
    ours = _jax_logits(model, x)
    assert np.abs(theirs).max() > 0.1
    np.testing.assert_allclose(theirs, ours, atol=TOLERANCE, rtol=0)
    assert hf_model.config.id2label == dict(enumerate(CLASSES))
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "| test, last epoch | 61.25 | 60.50 | 80 |" in card and '"batch_size": 8' in card
    assert "Differences from training" not in card                     # epsilons equal: nothing to say


def test_huggingface_card_names_the_epsilons_that_differ(shared):
    card = (shared.export("classifier", "huggingface", "hf") / "README.md").read_text()   # official epsilons (1e-6)
    assert "LayerNorm epsilon of fc_norm / decoder norm: 1e-05 in the exported model, 1e-06 in training" in card


@pytest.mark.parametrize("kind", ["classifier", "pretrainer"])
@pytest.mark.parametrize("fmt, name", [("pytorch", "model.pth"), ("safetensors", "model.safetensors"),
                                       ("huggingface", "hf")])
def test_export_then_convert_gives_identical_parameters(shared, kind, fmt, name):
    _, model = shared.model_dir(kind)
    path = shared.export(kind, fmt, name)
    source = path / "model.safetensors" if fmt == "huggingface" else path
    result = convert(load_checkpoint(source if fmt != "huggingface" else path), keep_decoder=kind == "pretrainer")
    assert result.kind == kind and not result.fresh and not result.dropped
    before, after = _flat(model), _flat(result.model)
    assert set(before) == set(after)
    for path_name in before:
        np.testing.assert_array_equal(before[path_name], after[path_name], err_msg=path_name)


def test_layer_scale_is_refused_for_huggingface_but_exported_for_pytorch(tmp_path):
    cfg = _tiny(init_values=0.1)
    model_dir, model = _model_dir(tmp_path, cfg)
    with pytest.raises(InputError, match="layer scale"):
        export_model(model_dir, "huggingface", tmp_path / "hf")
    assert not (tmp_path / "hf").exists()
    result = convert(load_checkpoint(export_model(model_dir, "safetensors", tmp_path / "m.safetensors")))
    np.testing.assert_array_equal(_flat(model)["encoder.blocks.0.gamma_1"],
                                  _flat(result.model)["encoder.blocks.0.gamma_1"])


def test_a_head_without_a_place_in_videomae_is_refused(tmp_path):
    model_dir, _ = _model_dir(tmp_path, _tiny(head_norm="fresh"))
    with pytest.raises(InputError, match="head_norm"):
        export_model(model_dir, "pytorch", tmp_path / "model.pth")
    assert not (tmp_path / "model.pth").exists()


def test_export_does_not_overwrite(shared, tmp_path, capsys):
    model_dir, _ = shared.model_dir()
    (tmp_path / "taken.pth").write_bytes(b"x")
    assert main(["export", "--checkpoint", str(model_dir), "--format", "pytorch",
                 "--output", str(tmp_path / "taken.pth")]) == 2
    assert "exists" in capsys.readouterr().err and (tmp_path / "taken.pth").read_bytes() == b"x"


# --- a Hugging Face folder usable as it is: processor, epsilons, card, permissions ---------------
def _uint8_clip(cfg, seed: int = 3) -> np.ndarray:
    """One clip of pixel values 0..255, ``[T, S, S, 3]`` uint8."""
    return np.random.default_rng(seed).integers(0, 256, size=(cfg.num_frames, cfg.img_size, cfg.img_size, 3),
                                                dtype=np.uint8)


@pytest.mark.parametrize("normalization", ["imagenet_mean_std0225", "videomae"])
def test_auto_classes_on_a_uint8_clip_give_the_logits_of_forward(shared, tmp_path, normalization):
    """processor + model of transformers on a uint8 clip == `mmae-jax forward` on the clip
    normalised as training normalises it, in every layout forward reads."""
    cfg = _tiny()                                                       # trained with eps 1e-6 everywhere
    model_dir, _ = shared.model_dir(normalization=normalization)
    assert main(["export", "--checkpoint", str(model_dir.parent), "--format", "huggingface",
                 "--output", str(tmp_path / "hf")]) == 0
    processor = transformers.AutoImageProcessor.from_pretrained(tmp_path / "hf")
    hf_model = transformers.AutoModelForVideoClassification.from_pretrained(tmp_path / "hf").eval()
    mean, std = mean_std(normalization)
    np.testing.assert_allclose(processor.image_mean, mean, rtol=1e-7)
    np.testing.assert_allclose(processor.image_std, std, rtol=1e-7)
    assert hf_model.videomae.encoder.layer[0].layernorm_before.eps == cfg.layer_norm_eps   # read from config.json
    assert hf_model.config.head_layer_norm_eps == cfg.head_layer_norm_eps

    clip = _uint8_clip(cfg)
    pixel_values = processor(list(clip), return_tensors="pt")["pixel_values"]          # [1, T, C, H, W]
    with torch.no_grad():
        hf_model.fc_norm.eps = hf_model.config.head_layer_norm_eps                    # the card's line
        theirs = hf_model(pixel_values).logits.numpy()
    np.save(tmp_path / "clip.npy", to_model_input(clip[None], normalization))          # as training normalises
    assert main(["forward", "--checkpoint", str(model_dir), "--input", str(tmp_path / "clip.npy"),
                 "--layout", "nthwc", "--output", str(tmp_path / "logits.npy")]) == 0
    ours = np.load(tmp_path / "logits.npy")
    assert np.abs(theirs).max() > 0.1
    np.testing.assert_allclose(theirs, ours, atol=TOLERANCE / 10, rtol=0)


def test_forward_reads_the_transformers_layout_by_name(shared, tmp_path):
    """transformers' [B, T, C, H, W] is read with --layout ntchw; the three layouts give one array."""
    model_dir, model = shared.model_dir()
    x = _input()                                                                        # [B, T, H, W, C]
    read = {}
    for layout, axes in (("nthwc", (0, 1, 2, 3, 4)), ("ntchw", (0, 1, 4, 2, 3)), ("ncthw", (0, 4, 1, 2, 3))):
        np.save(tmp_path / f"{layout}.npy", x.transpose(axes))
        read[layout] = _read_clips(str(tmp_path / f"{layout}.npy"), layout)
        np.testing.assert_array_equal(read[layout], x, err_msg=layout)
    assert main(["forward", "--checkpoint", str(model_dir), "--input", str(tmp_path / "ntchw.npy"),
                 "--layout", "ntchw", "--output", str(tmp_path / "logits.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), _jax_logits(model, x), atol=1e-6, rtol=0)


def test_the_cards_epsilon_line_is_what_makes_the_head_norm_compute_as_in_training(tmp_path):
    """A head epsilon large enough to matter: transformers' fc_norm (built with 1e-5) is off
    until the card's line sets it from config.json."""
    cfg = _tiny(head_layer_norm_eps=0.05)
    model_dir, model = _model_dir(tmp_path, cfg)
    export_model(model_dir, "huggingface", tmp_path / "hf")
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "model.fc_norm.eps = model.config.head_layer_norm_eps" in card
    hf_model = transformers.AutoModelForVideoClassification.from_pretrained(tmp_path / "hf").eval()
    x = _input()
    ours = _jax_logits(model, x)
    with torch.no_grad():
        plain = hf_model(torch.from_numpy(x).permute(0, 1, 4, 2, 3)).logits.numpy()
        hf_model.fc_norm.eps = hf_model.config.head_layer_norm_eps
        theirs = hf_model(torch.from_numpy(x).permute(0, 1, 4, 2, 3)).logits.numpy()
    assert np.abs(plain - ours).max() > 10 * TOLERANCE
    np.testing.assert_allclose(theirs, ours, atol=TOLERANCE / 10, rtol=0)


def test_processor_resizes_to_the_model_size_without_cropping(shared):
    cfg = _tiny()
    processor = transformers.AutoImageProcessor.from_pretrained(shared.export("classifier", "huggingface", "hf"))
    frames = np.zeros((cfg.num_frames, 48, 40, 3), np.uint8)                         # another size, not square
    assert list(processor(list(frames), return_tensors="pt")["pixel_values"].shape) == \
        [1, cfg.num_frames, 3, cfg.img_size, cfg.img_size]
    assert processor.do_center_crop is False


def _front_matter(card: str) -> dict:
    yaml = pytest.importorskip("yaml")
    assert card.startswith("---\n"), card[:200]
    return yaml.safe_load(card.split("---\n")[1])


@pytest.fixture(scope="module")
def card_of_a_run_from_a_hub_checkpoint(tmp_path_factory) -> tuple[str, Path]:
    """``(card, folder)``: the card of a run whose ``init`` is a model converted from a hub id,
    and the folder that holds the run and the converted model."""
    tmp_path = tmp_path_factory.mktemp("hub_run")
    converted = tmp_path / "converted"                      # what `convert --source ORG/NAME@REV` writes
    model_io.save_model(converted, _random_model(_tiny(), "classifier"), _tiny(), kind="classifier",
                        metadata=dict(source="MCG-NJU/videomae-small-finetuned-kinetics@main",
                                      hub_snapshot=str(tmp_path.absolute() / "hub" / "snapshot")))
    model_dir, _ = _model_dir(tmp_path, _tiny(), init=str(converted.absolute()))
    export_model(model_dir, "huggingface", tmp_path / "hf")
    return (tmp_path / "hf" / "README.md").read_text(), tmp_path


def test_card_carries_license_and_base_model_metadata(card_of_a_run_from_a_hub_checkpoint):
    card, _ = card_of_a_run_from_a_hub_checkpoint
    assert _front_matter(card) == dict(license="apache-2.0", library_name="transformers",
                                       base_model="MCG-NJU/videomae-small-finetuned-kinetics",
                                       tags=["videomae", "emotion-recognition", "multimae-der", "mmae_jax"],
                                       pipeline_tag="video-classification")
    assert "licensed under Apache-2.0" in card
    assert "come from [`MCG-NJU/videomae-small-finetuned-kinetics`]" in card and "follow its terms" in card


def test_card_holds_no_path_of_the_training_machine_nor_an_empty_builder_config(card_of_a_run_from_a_hub_checkpoint):
    card, tmp_path = card_of_a_run_from_a_hub_checkpoint
    assert str(tmp_path.absolute()) not in card and str(tmp_path) not in card
    assert f'"data_dir": "{LOCAL_PATH}"' in card and f'"init": "{LOCAL_PATH}"' in card
    assert "builder config ``" not in card and "`synthetic`" in card


def test_card_states_the_input_layout_and_value_range(shared):
    card = (shared.export("classifier", "huggingface", "hf") / "README.md").read_text()
    assert "`pixel_values` float32 `[batch, 4, 3, 32, 32]`, transformers' `[B, T, C, H, W]`" in card
    assert "--layout ntchw" in card and "pixel values `x` in 0..255" in card
    assert "mean `[0.485, 0.456, 0.406]`, std `[0.225, 0.225, 0.225]`" in card


def test_card_of_a_pretrainer_has_one_tags_key_and_no_pipeline(shared):
    card = (shared.export("pretrainer", "huggingface", "hf") / "README.md").read_text()
    assert card.split("---\n")[1].count("tags:") == 1
    meta = _front_matter(card)
    assert "pretraining" in meta["tags"] and "pipeline_tag" not in meta and "base_model" not in meta
    assert "model.decoder.norm.eps = model.config.head_layer_norm_eps" in card


def test_a_model_without_a_recorded_normalisation_gets_no_processor_and_says_so(tmp_path):
    converted = tmp_path / "converted"
    model_io.save_model(converted, _random_model(_tiny(), "classifier"), _tiny(), kind="classifier",
                        metadata=dict(source=str(tmp_path.absolute() / "model.pth")))
    export_model(converted, "huggingface", tmp_path / "hf")
    assert not (tmp_path / "hf" / "preprocessor_config.json").exists()
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "records no normalisation" in card and str(tmp_path.absolute()) not in card
    assert "converted by mmae_jax from a local checkpoint" in card
    assert "base_model" not in _front_matter(card)


def test_an_unknown_normalisation_in_the_model_directory_is_refused_before_writing(tmp_path):
    model_dir, _ = _model_dir(tmp_path, _tiny(), normalization="imagenet_but_typo")
    with pytest.raises(InputError, match=r"final_model/config.json: unknown normalization 'imagenet_but_typo'"):
        export_model(model_dir, "huggingface", tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_exported_files_follow_the_umask(shared, tmp_path, umask, mode):
    model_dir, _ = shared.model_dir()
    previous = os.umask(umask)
    try:
        written = [export_model(model_dir, "safetensors", tmp_path / "m.safetensors"),
                   export_model(model_dir, "pytorch", tmp_path / "m.pth"),
                   *sorted(export_model(model_dir, "huggingface", tmp_path / "hf").iterdir())]
    finally:
        os.umask(previous)
    assert {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in written} == \
        {path.name: oct(mode) for path in written}
    assert {"m.pth", "m.safetensors", "model.safetensors", "config.json", "README.md"} <= \
        {path.name for path in written}


NO_TORCH = """
import sys
from pathlib import Path
sys.modules["torch"] = None          # `import torch` raises ImportError, as without the package
from mmae_jax.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_pytorch_export_without_torch_is_one_line_naming_the_extra(shared, tmp_path):
    model_dir, _ = shared.model_dir()
    result = subprocess.run([sys.executable, "-c", NO_TORCH, "export", "--checkpoint", str(model_dir),
                             "--format", "pytorch", "--output", str(tmp_path / "model.pth")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: writing a PyTorch .pth needs torch"), result.stderr
    assert "mmae_jax[torch]" in lines[0] and "--format safetensors" in lines[0]
    assert not (tmp_path / "model.pth").exists()
