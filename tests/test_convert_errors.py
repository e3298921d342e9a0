"""Checkpoints that can not be converted: one line naming the file and the cause, nothing written."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mmae_jax.cli import main  # noqa: E402
from mmae_jax.convert import torch_reference as reference  # noqa: E402
from mmae_jax.model import VideoMAEConfig  # noqa: E402


def tiny_state() -> dict:
    cfg = VideoMAEConfig.from_variant("tiny", num_frames=4, img_size=32)
    return reference.randomize_parameters(reference.VisionTransformer(cfg), 0).state_dict()


def convert_error(tmp_path, capsys, source) -> str:
    rc = main(["convert", "--source", str(source), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    return err


def test_empty_file(tmp_path, capsys):
    (tmp_path / "empty.pth").write_bytes(b"")
    assert "empty.pth: the file is empty" in convert_error(tmp_path, capsys, tmp_path / "empty.pth")


def test_random_bytes_are_called_corrupt_not_untrusted(tmp_path, capsys):
    (tmp_path / "noise.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    err = convert_error(tmp_path, capsys, tmp_path / "noise.pth")
    assert "not a PyTorch checkpoint" in err and "--trust-pickle" not in err


def test_missing_head_weight_is_named_once(tmp_path, capsys):
    state = tiny_state()
    del state["head.weight"]
    torch.save(state, tmp_path / "nohead.pth")
    err = convert_error(tmp_path, capsys, tmp_path / "nohead.pth")
    assert err.count("head.weight") == 1 and "missing key head.weight" in err and len(err.splitlines()) == 1


def test_nan_weights_are_refused(tmp_path, capsys):
    state = tiny_state()
    state["blocks.1.mlp.fc2.weight"][3, 4] = float("nan")
    torch.save(state, tmp_path / "nan.pth")
    err = convert_error(tmp_path, capsys, tmp_path / "nan.pth")
    assert "blocks.1.mlp.fc2.weight: 1 NaN or infinite values" in err
