"""The original notebook's backbone as it ran (no position table) and the refusal of a linear
probe on a backbone nobody loaded."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from mmae_jax.model import VideoMAEClassifier
from mmae_jax.model.layers import apply_blocks
from mmae_jax.model.position import sinusoid_position_table
from mmae_jax.config.recipes import dataset_config
from mmae_jax.train.steps import model_config

ROOT = Path(__file__).resolve().parents[1]


def _tiny_paper_model(**changes):
    """The ``recipe=multimae_der`` model config at the tiny variant's sizes (4 frames of 32 x 32)."""
    config = dataset_config("ravdess", "variant=tiny")
    config.data.num_frames, config.data.image_size = 4, 32
    config.model.dtype = "float32"
    cfg = model_config(config, num_classes=7).replace(**changes)
    return cfg, VideoMAEClassifier(cfg, rngs=nnx.Rngs(0))


def _blocks_on(model, tokens):
    return apply_blocks(model.encoder.blocks, tokens, "none")


def test_paper_backbone_runs_the_blocks_on_the_patch_tokens_without_the_position_table():
    """Sequential(finetune_videomae.layers[:-3]) of innat/VideoMAE: patch_embed, pos_drop (rate 0),
    the blocks and the identity norm; the table is added in forward_features, never called."""
    cfg, model = _tiny_paper_model()
    assert cfg.position_table is False and cfg.use_mean_pooling and cfg.head_norm == "fresh"
    x = jax.random.uniform(jax.random.PRNGKey(1), (2, 4, 32, 32, 3))
    patches = model.encoder.patch_embed(x)
    table = sinusoid_position_table(patches.shape[1], cfg.embed_dim)[None]
    tokens = np.asarray(model.encoder(x))
    np.testing.assert_allclose(tokens, np.asarray(_blocks_on(model, patches)), rtol=1e-5, atol=1e-5)
    assert np.abs(tokens - np.asarray(_blocks_on(model, patches + table))).max() > 1e-2


def test_the_position_table_is_added_unless_switched_off():
    cfg, model = _tiny_paper_model(position_table=True)
    x = jax.random.uniform(jax.random.PRNGKey(2), (1, 4, 32, 32, 3))
    patches = model.encoder.patch_embed(x)
    table = sinusoid_position_table(patches.shape[1], cfg.embed_dim)[None]
    np.testing.assert_allclose(np.asarray(model.encoder(x)), np.asarray(_blocks_on(model, patches + table)),
                               rtol=1e-5, atol=1e-5)
    videomae = dataset_config("ravdess", "recipe=videomae")
    assert model_config(videomae, 7).position_table is True


# ----------------------------------------------------------------------------- probe needs init

def _train(tmp_path, capsys, *overrides: str) -> tuple[int, str]:
    from mmae_jax.cli import main

    code = main(["train", "--config", "ravdess", "--workdir", str(tmp_path / "run"),
                 f"--config.data.data_dir={tmp_path / 'tfds'}", *overrides])
    return code, capsys.readouterr().err


def test_linear_probe_without_init_is_refused_in_one_line(tmp_path, capsys):
    code, err = _train(tmp_path, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: mode=linear_probe")
    assert "--config.init=" in lines[0] and "--config.init=random" in lines[0]
    assert not (tmp_path / "run").exists()


def test_init_random_lets_the_probe_past_that_check(tmp_path, capsys):
    """``random`` is not read as a folder; the run then stops at the next check (no data built)."""
    code, err = _train(tmp_path, capsys, "--config.init=random")
    assert code == 2 and "no init" not in err and "prepare ravdess --config notebook_mfcc" in err
    assert not (tmp_path / "run").exists()


def test_finetuning_from_scratch_needs_no_init():
    from mmae_jax.config.validate import check_probe_init

    config = dataset_config("ravdess", "recipe=videomae")
    check_probe_init(config)            # finetune: a random start is a normal experiment
    config = dataset_config("ravdess", "init=random")
    check_probe_init(config)
    config = dataset_config("ravdess", None)
    with pytest.raises(ValueError, match="no init"):
        check_probe_init(config)
