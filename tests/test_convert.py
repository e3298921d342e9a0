"""Checkpoint conversion: parity with PyTorch per family, the CLI round trip, and the errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from mmae_jax.cli import main  # noqa: E402
from mmae_jax.convert import torch_reference as reference  # noqa: E402
from mmae_jax.convert.converter import convert, convert_checkpoint  # noqa: E402
from mmae_jax.convert.parity import compare_checkpoint  # noqa: E402
from mmae_jax.convert.torch_loading import CheckpointError, load_checkpoint  # noqa: E402
from mmae_jax.model import VideoMAEConfig  # noqa: E402
from mmae_jax.model.io import build_model, read_config, restore_into, save_model  # noqa: E402

TOLERANCE = 1e-4
TINY = dict(num_frames=4, img_size=32)


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)


def _assert_parity(rows, expected_outputs):
    assert {row.output for row in rows} == set(expected_outputs)
    for row in rows:
        assert row.max_abs <= TOLERANCE, f"{row.output}: max abs diff {row.max_abs:.3g}"
        assert row.torch_max > 0.1, f"{row.output}: outputs too small ({row.torch_max:.3g}) to compare"


def _official_classifier(path, cfg, seed=0, wrap=True):
    model = reference.randomize_parameters(reference.VisionTransformer(cfg), seed).eval()
    state = model.state_dict()
    torch.save({"model": state, "epoch": 3, "args": argparse.Namespace(lr=1e-3)} if wrap else state, path)
    return model


def _hf_config(**sizes):
    return transformers.VideoMAEConfig(**{**dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                                                 intermediate_size=512, num_frames=4, image_size=32,
                                                 decoder_hidden_size=64, decoder_num_hidden_layers=1,
                                                 decoder_num_attention_heads=2, decoder_intermediate_size=256),
                                          **sizes})


# --- parity at 16x224, small, one test per family --------------------------------------------
@pytest.mark.slow
def test_official_finetune_parity_small_16x224(tmp_path):
    cfg = VideoMAEConfig.from_variant("small", num_classes=7)
    _official_classifier(tmp_path / "finetuned.pth", cfg)
    result, rows = compare_checkpoint(load_checkpoint(tmp_path / "finetuned.pth"))
    assert (result.family, result.cfg.variant, result.kind) == ("official-finetune", "small", "classifier")
    _assert_parity(rows, {"logits", "features"})


@pytest.mark.slow
def test_official_pretrain_parity_small_16x224(tmp_path):
    cfg = VideoMAEConfig.from_variant("small")
    model = reference.randomize_parameters(reference.PretrainVisionTransformer(cfg), 1)
    torch.save(model.state_dict(), tmp_path / "pretrained.pth")
    result, rows = compare_checkpoint(load_checkpoint(tmp_path / "pretrained.pth"))
    assert (result.family, result.cfg.variant, result.kind) == ("official-pretrain", "small", "pretrainer")
    _assert_parity(rows, {"tokens", "predictions"})


@pytest.mark.slow
def test_huggingface_parity_small_16x224(tmp_path):
    config = transformers.VideoMAEConfig(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                         intermediate_size=1536, num_labels=7)
    model = reference.randomize_parameters(transformers.VideoMAEForVideoClassification(config), 2)
    model.save_pretrained(tmp_path / "hf")
    result, rows = compare_checkpoint(load_checkpoint(tmp_path / "hf"))
    assert (result.family, result.cfg.variant, result.cfg.num_heads) == ("huggingface", "small", 6)
    _assert_parity(rows, {"logits", "features"})


# --- the other Hugging Face forms (tiny) ------------------------------------------------------
def test_huggingface_v4_names_in_pytorch_model_bin(tmp_path):
    model = reference.randomize_parameters(transformers.VideoMAEForVideoClassification(_hf_config(num_labels=5)), 3)
    folder = tmp_path / "v4"
    folder.mkdir()
    model.config.to_json_file(folder / "config.json")
    v4_state = {key.replace("attention.attention.query.bias", "attention.attention.q_bias")
                   .replace("attention.attention.value.bias", "attention.attention.v_bias"): value
                for key, value in model.state_dict().items()}
    assert any(key.endswith("q_bias") for key in v4_state)
    torch.save(v4_state, folder / "pytorch_model.bin")
    _, rows = compare_checkpoint(load_checkpoint(folder))
    _assert_parity(rows, {"logits", "features"})


@pytest.mark.parametrize("model_class, outputs", [
    ("VideoMAEForVideoClassification", {"logits", "features"}),
    ("VideoMAEForPreTraining", {"tokens", "predictions"}),
])
def test_huggingface_layer_norm_epsilons_are_carried_over(tmp_path, model_class, outputs):
    """A large layer_norm_eps makes the epsilon visible in the outputs: parity needs the
    config's value in the blocks and PyTorch's default 1e-5 in fc_norm / the decoder norm."""
    classifier = "Classification" in model_class
    config = _hf_config(layer_norm_eps=0.05, **({"num_labels": 3} if classifier else {"use_mean_pooling": False}))
    model = reference.randomize_parameters(getattr(transformers, model_class)(config), 6)
    model.save_pretrained(tmp_path / "hf")
    result, rows = compare_checkpoint(load_checkpoint(tmp_path / "hf"))
    assert (result.cfg.layer_norm_eps, result.cfg.head_layer_norm_eps) == (0.05, 1e-5)
    _assert_parity(rows, outputs)


@pytest.mark.parametrize("model_class, outputs", [
    ("VideoMAEForPreTraining", {"tokens", "predictions"}),
    ("VideoMAEModel", {"tokens"}),
])
def test_huggingface_pretraining_and_bare_model(tmp_path, model_class, outputs):
    config = _hf_config(use_mean_pooling=model_class == "VideoMAEModel")
    model = reference.randomize_parameters(getattr(transformers, model_class)(config), 4)
    model.save_pretrained(tmp_path / "hf")
    _, rows = compare_checkpoint(load_checkpoint(tmp_path / "hf" / "model.safetensors"))
    _assert_parity(rows, outputs)


def test_layer_scale_and_token_pooling_tiny(tmp_path):
    cfg = VideoMAEConfig.from_variant("tiny", init_values=0.1, use_mean_pooling=False, **TINY)
    _official_classifier(tmp_path / "a.pth", cfg, wrap=False)
    result, rows = compare_checkpoint(load_checkpoint(tmp_path / "a.pth"), batch=2)
    assert "encoder.blocks.0.gamma_1" in result.loaded and "encoder.norm.scale" in result.loaded
    _assert_parity(rows, {"logits", "features"})


# --- CLI: convert -> forward, heads, initial weights for training -----------------------------
def test_convert_then_forward_matches_pytorch(tmp_path, capsys):
    cfg = VideoMAEConfig.from_variant("tiny", num_classes=5, **TINY)
    torch_model = _official_classifier(tmp_path / "ckpt.pth", cfg)
    clips = np.random.default_rng(0).standard_normal((2, 3, 4, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", clips)
    assert main(["convert", "--source", str(tmp_path / "ckpt.pth"), "--output", str(tmp_path / "jax"),
                 "--frames", "4", "--size", "32"]) == 0
    assert main(["forward", "--checkpoint", str(tmp_path / "jax"), "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "logits.npy")]) == 0
    assert main(["forward", "--checkpoint", str(tmp_path / "jax"), "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "features.npy"), "--features"]) == 0
    with torch.no_grad():
        expected_logits = torch_model(torch.from_numpy(clips)).numpy()
        expected_features = torch_model.forward_features(torch.from_numpy(clips)).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), expected_logits, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(np.load(tmp_path / "features.npy"), expected_features, atol=TOLERANCE, rtol=0)
    saved_cfg, kind, metadata = read_config(tmp_path / "jax")
    assert (saved_cfg.num_classes, kind, metadata["family"], metadata["wrapper_entry"]) == \
        (5, "classifier", "official-finetune", "model")


def test_new_head_and_classifier_from_pretrainer(tmp_path, capsys):
    cfg = VideoMAEConfig.from_variant("tiny", num_classes=5, **TINY)
    _official_classifier(tmp_path / "ckpt.pth", cfg)
    assert main(["convert", "--source", str(tmp_path / "ckpt.pth"), "--output", str(tmp_path / "new_head"),
                 "--num-classes", "3"]) == 0
    assert "head re-initialised for 3 classes (the checkpoint's has 5)" in capsys.readouterr().out
    _, _, metadata = read_config(tmp_path / "new_head")
    assert metadata["fresh"] == ["head.bias", "head.kernel"] and "head.weight" in metadata["dropped"]

    pretrainer = reference.randomize_parameters(reference.PretrainVisionTransformer(cfg), 5)
    torch.save(pretrainer.state_dict(), tmp_path / "pre.pth")
    convert_checkpoint(tmp_path / "pre.pth", tmp_path / "pre", keep_decoder=True)
    classifier = build_model(cfg.replace(num_classes=4), "classifier")
    report = restore_into(classifier, tmp_path / "pre")
    assert set(report.left_at_init) == {"fc_norm.scale", "fc_norm.bias", "head.kernel", "head.bias"}
    assert "mask_token" in report.unused and not report.shape_mismatches
    np.testing.assert_array_equal(np.asarray(classifier.encoder.blocks[1].mlp.fc2.kernel[...]),
                                  pretrainer.encoder.blocks[1].mlp.fc2.weight.detach().numpy().T)


def test_restore_into_reports_shape_mismatch(tmp_path):
    cfg = VideoMAEConfig.from_variant("tiny", num_classes=5, **TINY)
    save_model(tmp_path / "m", build_model(cfg, "classifier"), cfg, kind="classifier")
    report = restore_into(build_model(cfg.replace(num_classes=2), "classifier", seed=1), tmp_path / "m")
    assert report.shape_mismatches == (("head.bias", (5,), (2,)), ("head.kernel", (128, 5), (128, 2)))
    assert not report.complete and "head.kernel saved (128, 5) model (128, 2)" in report.describe()


# --- errors: one message naming every key and shape, nothing written --------------------------
def _convert_fails(tmp_path, source, **options) -> str:
    output = tmp_path / "out"
    with pytest.raises(CheckpointError) as error:
        convert_checkpoint(source, output, **options)
    assert not output.exists()
    return str(error.value)


def test_truncated_file(tmp_path):
    _official_classifier(tmp_path / "full.pth", VideoMAEConfig.from_variant("tiny", **TINY))
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    message = _convert_fails(tmp_path, tmp_path / "cut.pth")
    assert "cut.pth" in message and "truncated or corrupt" in message


def test_checkpoint_of_another_variant(tmp_path):
    _official_classifier(tmp_path / "tiny.pth", VideoMAEConfig.from_variant("tiny", **TINY))
    message = _convert_fails(tmp_path, tmp_path / "tiny.pth", variant="small")
    assert "shape mismatch blocks.0.attn.qkv.weight: checkpoint [384, 128], model expects [1152, 384]" in message
    assert "model parameter encoder.blocks.11.norm1.scale [384]: no tensor in the checkpoint makes it" in message
    assert "head.weight: checkpoint [7, 128], model expects [7, 384]" in message


def test_renamed_key(tmp_path):
    cfg = VideoMAEConfig.from_variant("tiny", **TINY)
    state = reference.randomize_parameters(reference.VisionTransformer(cfg), 0).state_dict()
    state["blocks.2.mlp.fc_one.weight"] = state.pop("blocks.2.mlp.fc1.weight")
    torch.save(state, tmp_path / "renamed.pth")
    message = _convert_fails(tmp_path, tmp_path / "renamed.pth")
    assert "2 problem(s)" in message
    assert "missing key blocks.2.mlp.fc1.weight: the model expects [512, 128]" in message
    assert "unexpected key blocks.2.mlp.fc_one.weight [512, 128]" in message


class _Opaque:
    """A type outside the allow-list: unpickling it would run arbitrary code paths."""


def test_pickle_needs_trust(tmp_path):
    cfg = VideoMAEConfig.from_variant("tiny", **TINY)
    state = reference.randomize_parameters(reference.VisionTransformer(cfg), 0).state_dict()
    torch.save({"model": state, "extra": _Opaque()}, tmp_path / "opaque.pth")
    message = _convert_fails(tmp_path, tmp_path / "opaque.pth")
    assert "refused to unpickle" in message and "_Opaque" in message and "--trust-pickle" in message
    assert convert(load_checkpoint(tmp_path / "opaque.pth", trust_pickle=True)).family == "official-finetune"


def test_library_never_imports_torch():
    code = ("import sys, mmae_jax.model, mmae_jax.model.io, mmae_jax.cli; mmae_jax.cli.build_parser(); "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers'))))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []


# --- a Hugging Face model id, resolved from a local hub cache ---------------------------------
def _hub_cache_with(tmp_path, repo_id: str, model) -> tuple:
    """``model`` saved the way the hub cache holds a download: files in blobs/ named by their
    hash, ``snapshots/<commit>/`` linking to them, ``refs/main`` naming the commit."""
    import hashlib
    import os
    saved = tmp_path / "saved"
    model.save_pretrained(saved)
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "blobs").mkdir()
    (repo / "snapshots" / commit).mkdir(parents=True)
    for file in saved.iterdir():
        blob = repo / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        blob.write_bytes(file.read_bytes())
        os.symlink(os.path.relpath(blob, repo / "snapshots" / commit), repo / "snapshots" / commit / file.name)
    return tmp_path / "hub", saved


@pytest.mark.slow
def test_huggingface_model_id_converts_offline_from_the_hub_cache(tmp_path):
    labels = {0: "abseiling", 1: "air drumming", 2: "answering questions"}
    config = _hf_config(num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()})
    model = reference.randomize_parameters(transformers.VideoMAEForVideoClassification(config), 5)
    cache, saved = _hub_cache_with(tmp_path, "SomeOrg/videomae-tiny-test", model)
    env = dict(__import__("os").environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache), HF_HOME=str(tmp_path / "home"))
    script = ("import sys; from mmae_jax.cli import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", script, "convert", "--source", "SomeOrg/videomae-tiny-test",
                           "--output", str(tmp_path / "jax")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    _, kind, metadata = read_config(tmp_path / "jax")
    assert (kind, metadata["source"], metadata["class_names"]) == (
        "classifier", "SomeOrg/videomae-tiny-test", ["abseiling", "air drumming", "answering questions"])
    # the converted weights are the checkpoint's: the same as converting the saved folder itself
    from_folder = convert(load_checkpoint(saved)).model
    restored = build_model(from_folder.cfg, "classifier", seed=9)
    report = restore_into(restored, tmp_path / "jax")
    assert report.complete
    clips = np.random.default_rng(1).standard_normal((2, 4, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(restored(clips)), np.asarray(from_folder(clips)), atol=1e-6, rtol=0)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(clips.transpose(0, 1, 4, 2, 3))).logits.numpy()
    np.testing.assert_allclose(np.asarray(restored(clips)), expected, atol=TOLERANCE, rtol=0)
    missing = subprocess.run([sys.executable, "-c", script, "convert", "--source", "SomeOrg/not-cached",
                              "--output", str(tmp_path / "none")], env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and "SomeOrg/not-cached: not found in the local hub cache" in missing.stderr
