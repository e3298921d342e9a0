"""Export to PyTorch / Hugging Face: logits equal to an independent PyTorch VideoMAE and to
transformers, and export -> convert gives back every parameter unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from mmae_jax.cli import main  # noqa: E402
from mmae_jax.convert import torch_reference as reference  # noqa: E402
from mmae_jax.convert.converter import convert  # noqa: E402
from mmae_jax.convert.export import export_model  # noqa: E402
from mmae_jax.convert.torch_loading import load_checkpoint  # noqa: E402
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


def _model_dir(tmp_path, cfg, kind="classifier", **metadata):
    """A model directory inside a training-like workdir (config.json and results.json beside it)."""
    workdir = tmp_path / "run"
    model = _random_model(cfg, kind)
    model_io.save_model(workdir / "final_model", model, cfg, kind=kind,
                        metadata=dict(class_names=CLASSES, data=dict(dataset="synthetic", strategy="fslf"), step=7,
                                      **metadata))
    (workdir / "config.json").write_text(json.dumps({"data": {"strategy": "fslf"}, "batch_size": 8}))
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


def test_pytorch_export_matches_the_independent_reference(tmp_path):
    cfg = _tiny()
    model_dir, model = _model_dir(tmp_path, cfg)
    path = export_model(model_dir.parent, "pytorch", tmp_path / "model.pth")   # the workdir: its final_model
    torch_model = reference.VisionTransformer(cfg)
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


def test_huggingface_card_names_the_epsilons_that_differ(tmp_path):
    model_dir, _ = _model_dir(tmp_path, _tiny())                       # official epsilons (1e-6)
    export_model(model_dir, "huggingface", tmp_path / "hf")
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "LayerNorm epsilon of fc_norm / decoder norm: 1e-05 in the exported model, 1e-06 in training" in card


@pytest.mark.parametrize("kind", ["classifier", "pretrainer"])
@pytest.mark.parametrize("fmt, name", [("pytorch", "model.pth"), ("safetensors", "model.safetensors"),
                                       ("huggingface", "hf")])
def test_export_then_convert_gives_identical_parameters(tmp_path, kind, fmt, name):
    cfg = _tiny()
    model_dir, model = _model_dir(tmp_path, cfg, kind)
    path = export_model(model_dir, fmt, tmp_path / name)
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


def test_export_does_not_overwrite(tmp_path, capsys):
    model_dir, _ = _model_dir(tmp_path, _tiny())
    (tmp_path / "taken.pth").write_bytes(b"x")
    assert main(["export", "--checkpoint", str(model_dir), "--format", "pytorch",
                 "--output", str(tmp_path / "taken.pth")]) == 2
    assert "exists" in capsys.readouterr().err and (tmp_path / "taken.pth").read_bytes() == b"x"
