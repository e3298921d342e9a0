"""The dataset configs' recipes: `multimae_der` sets every fact of the published notebook, `videomae`
keeps the project's defaults; a missing build stops with the command that makes it."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from mmae_jax.config.defaults import default_data_config
from mmae_jax.config.defaults import base_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def dataset_config(name: str, arg: str | None = None):
    return runpy.run_path(str(CONFIGS / f"{name}.py"))["get_config"](arg)


@pytest.mark.parametrize("name", ["ravdess", "crema_d", "iemocap"])
def test_paper_recipe_sets_the_notebooks_facts(name):
    config = dataset_config(name)
    assert (config.mode, config.batch_size, config.num_epochs) == ("linear_probe", 16, 100)
    assert (config.optim.lr, config.optim.min_lr, config.optim.warmup_epochs) == (1e-2, 1e-2, 0.0)
    assert (config.optim.weight_decay, config.optim.decay_all, config.optim.eps) == (0.05, True, 1e-7)
    assert (config.optim.mixup_alpha, config.optim.cutmix_alpha, config.optim.label_smoothing) == (0, 0, 0)
    assert (config.optim.layer_decay, config.optim.scale_lr_by_batch) == (1.0, False)
    assert (config.model.head_norm, config.model.head_layer_norm_eps, config.model.head_init) == \
        ("fresh", 1e-6, "glorot_uniform")
    assert (config.model.fc_drop_rate, config.model.drop_path_rate, config.model.dtype) == (0.0, 0.0, "bfloat16")
    data = config.data
    assert (data.builder_config, data.frame_sampling, data.spectrogram_render) == ("notebook_mfcc", "notebook_timing", "matshow")
    assert (data.rfas_order, data.sfas_mode, data.normalization, data.protocol) == \
        ("per_clip", "wrap", "imagenet_mean_std0225", "notebook")
    assert not (data.augment.face_crop or data.augment.face_flip)
    assert data.augment.spec_time_mask == data.augment.spec_freq_mask == 0.0


def test_videomae_recipe_keeps_the_better_defaults():
    config = dataset_config("ravdess", "recipe=videomae")
    defaults, base = default_data_config(), base_config()
    assert config.mode == "finetune" and config.model.head_norm == "fc_norm"
    assert (config.optim.decay_all, config.optim.eps, config.optim.layer_decay) == (False, 1e-8, 0.75)
    assert config.data.builder_config == defaults.builder_config
    assert config.data.spectrogram_render == defaults.spectrogram_render
    assert config.data.sfas_mode == defaults.sfas_mode and config.data.protocol == "random_split"
    assert config.data.frame_sampling == defaults.frame_sampling
    assert config.data.rfas_order == defaults.rfas_order
    assert config.data.augment.face_crop and config.model.dtype == base.model.dtype


def test_protocol_and_mode_can_be_chosen_under_the_paper_recipe():
    config = dataset_config("ravdess", "protocol=hicmae,fold=3,mode=finetune")
    assert (config.data.protocol, config.data.fold, config.mode) == ("hicmae", 3, "finetune")
    assert config.optim.decay_all


def test_a_missing_paper_build_stops_with_the_prepare_command(tmp_path, capsys):
    from mmae_jax.cli import main
    rc = main(["train", "--config", f"{CONFIGS / 'ravdess.py'}:runlocal=true",
               f"--config.data.data_dir={tmp_path / 'tfds'}", "--workdir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("error: ") and "dataset 'ravdess/notebook_mfcc' is not built" in err[0]
    assert f"mmae-jax prepare ravdess --config notebook_mfcc --manual-dir RAW_DIR --data-dir {tmp_path / 'tfds'}" in err[0]
