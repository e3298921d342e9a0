"""Training parity: `mmae-jax compare --train-steps` trains a tiny checkpoint in PyTorch (VideoMAE's
recipe) and in JAX (our train step) and agrees for both recipes; a change on one side fails it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mmae_jax.cli import main  # noqa: E402
from mmae_jax.cli.runtime import load_config  # noqa: E402
from mmae_jax.convert import torch_recipe  # noqa: E402
from mmae_jax.convert import torch_reference as reference  # noqa: E402
from mmae_jax.convert.torch_loading import load_checkpoint  # noqa: E402
from mmae_jax.convert.train_parity import run_training_parity  # noqa: E402
from mmae_jax.model import VideoMAEConfig  # noqa: E402

TOLERANCE = 1e-4
STEPS = 5
RAVDESS = Path(__file__).resolve().parents[1] / "configs" / "ravdess.py"


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny official fine-tuned checkpoint (4 blocks, 5 classes) with random weights, 4x32x32 clips."""
    cfg = VideoMAEConfig.from_variant("tiny", num_classes=5, num_frames=4, img_size=32)
    path = tmp_path_factory.mktemp("parity") / "tiny.pth"
    torch.save(reference.randomize_parameters(reference.VisionTransformer(cfg), 0).state_dict(), path)
    return path


def _command(checkpoint, recipe: str, *extra: str) -> list[str]:
    return ["compare", "--source", str(checkpoint), "--frames", "4", "--img-size", "32", "--batch", "4",
            "--train-steps", str(STEPS), "--config", f"{RAVDESS}:recipe={recipe}", *extra]


# VideoMAE's lr 1e-3 x 4 / 256 during warm-up barely moves the loss of a tiny model in 5 steps;
# at 10x the same recipe agrees, and a recipe difference shows in the losses.
VIDEOMAE_FAST = ("--config.optim.lr=1e-2",)


def test_videomae_recipe_agrees_through_the_command(checkpoint, capsys):
    assert main(_command(checkpoint, "videomae", *VIDEOMAE_FAST, "--param-tolerance", "0.02")) == 0
    out = capsys.readouterr().out
    assert "switched off" in out and "model.drop_path_rate 0.1 -> 0" in out and "optim.mixup_alpha 0.8 -> 0" in out
    step_lines = [line.split() for line in out.splitlines() if line.split()[:1] in [[str(i)] for i in range(1, 6)]]
    assert len(step_lines) == STEPS
    torch_lrs = [float(line[7]) for line in step_lines]
    assert torch_lrs[0] == 0.0 and all(b > a for a, b in zip(torch_lrs, torch_lrs[1:]))   # warm-up
    assert "layer_0_decay" in out and "layer_5_no_decay" in out and "OK: tolerance 0.0001 (steps), 0.02" in out


def test_paper_recipe_agrees_linear_probe_with_decay_on_every_weight(checkpoint):
    config = load_config(["--config", f"{RAVDESS}:recipe=multimae_der"])
    report = run_training_parity(load_checkpoint(checkpoint), config, steps=STEPS, batch=4, num_frames=4,
                                 img_size=32)
    assert report.model_cfg.freeze_backbone and report.model_cfg.head_norm == "fresh"
    for step in report.steps:
        assert max(step.relative().values()) <= TOLERANCE, step
        assert step.torch_lr == pytest.approx(1e-2)
    losses = [step.jax_loss for step in report.steps]
    assert np.ptp(losses) > 1e-3   # training moved: the comparison is not of constants
    # Keras AdamW: one group, every trained tensor decayed (head kernel and bias, the new norm).
    assert [(g.group, g.num_tensors, g.weight_decay) for g in report.groups] == [("decay", 4, 0.05)]
    assert report.groups[0].max_moved > 1e-3 and report.failures(TOLERANCE, param_tolerance=2e-2) == []


# A recipe difference must fail the comparison. The videomae-recipe case trains 5 steps on each
# side like the passing test (about 15 s): slow; the paper-recipe case stays in the fast loop.
@pytest.mark.slow
def test_a_different_layer_decay_on_the_torch_side_fails(checkpoint, monkeypatch, capsys):
    original = torch_recipe.layer_scales
    monkeypatch.setattr(torch_recipe, "layer_scales", lambda decay, depth: original(0.65, depth))
    assert main(_command(checkpoint, "videomae", *VIDEOMAE_FAST, "--param-tolerance", "0.02")) == 1
    out = capsys.readouterr().out
    assert "MISMATCH step" in out and "MISMATCH group layer_0_decay" in out and "FAIL:" in out


def test_sparing_biases_and_norms_from_weight_decay_on_the_torch_side_fails(checkpoint, monkeypatch, capsys):
    original = torch_recipe.parameter_groups
    monkeypatch.setattr(torch_recipe, "parameter_groups",
                        lambda *args, **kwargs: original(*args, **{**kwargs, "decay_all": False}))
    assert main(_command(checkpoint, "multimae_der")) == 1
    out = capsys.readouterr().out
    assert "MISMATCH step" in out and "MISMATCH group" not in out


def test_videomae_schedule_and_groups_follow_videomae_code():
    """cosine_scheduler's np.linspace warm-up and get_num_layer_for_vit's ids, on known values."""
    schedule = torch_recipe.cosine_schedule(1.0, 0.0, epochs=3, steps_per_epoch=2, warmup_epochs=1)
    cosine = [0.5 * (1 + np.cos(np.pi * i / 4)) for i in range(4)]
    np.testing.assert_allclose(schedule, [0.0, 1.0, *cosine])
    assert [torch_recipe.vit_layer_id(n, 14) for n in ("patch_embed.proj.weight", "blocks.0.norm1.weight",
                                                       "blocks.11.mlp.fc2.bias", "fc_norm.weight", "head.weight")] \
        == [0, 1, 12, 13, 13]


def test_command_needs_both_steps_and_config(checkpoint, capsys):
    assert main(["compare", "--source", str(checkpoint), "--train-steps", "3"]) == 2
    assert "--config" in capsys.readouterr().err
