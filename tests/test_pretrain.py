"""MAE pre-training through the shared train loop, and fine-tuning from its encoder."""

import json
import os
import signal
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "configs"))
import demo  # noqa: E402
import pretrain_demo  # noqa: E402

from stored_dataset import write_stored_dataset  # noqa: E402


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tfds")
    write_stored_dataset(path)
    return path


def tiny(config, data_dir, **changes):
    config.data.update(data_dir=str(data_dir), image_size=32, num_frames=4, shuffle_buffer=64)
    config.update(batch_size=8, log_every_steps=1, **changes)
    config.eval.update(every_epochs=1, batch_size=16)
    config.optim.update(warmup_epochs=0.0, lr=3e-3)
    config.checkpoint.every_steps = 1000
    return config


@pytest.fixture(scope="module")
def pretrained(data_dir, tmp_path_factory):
    from mmae_jax.train.loop import pretrain
    workdir = tmp_path_factory.mktemp("pretrain")
    results = pretrain(tiny(pretrain_demo.get_config(), data_dir, num_epochs=4), workdir)
    return workdir, results


def test_pretraining_loss_falls_and_pictures_are_written(pretrained):
    from mmae_jax.train.logs import read_metrics
    workdir, results = pretrained
    losses = [r["loss"] for r in read_metrics(workdir) if r["split"] == "train"]
    assert len(losses) == results["steps"] == 16
    assert np.mean(losses[-4:]) < 0.9 * np.mean(losses[:4])
    history = results["reconstruction_history"]
    assert [h["step"] for h in history] == [4, 8, 12, 16] and history[-1]["loss"] < history[0]["loss"]
    assert (workdir / "reconstruction_step16.png").stat().st_size > 1000
    config = json.loads((workdir / "final_model" / "config.json").read_text())
    assert config["kind"] == "pretrainer"


def test_finetuning_from_pretraining_loads_every_encoder_tensor(pretrained, data_dir, tmp_path):
    from flax import nnx

    from mmae_jax.model.io import load_model
    from mmae_jax.train.classification import ClassificationTask
    from mmae_jax.train.loop import Trainer

    workdir, _ = pretrained
    pretrainer, _, _ = load_model(workdir / "final_model")
    saved = nnx.state(pretrainer.encoder, nnx.Param).to_pure_dict()
    config = tiny(demo.get_config(f"init={workdir}"), data_dir, num_epochs=1)
    trainer = Trainer(config, tmp_path, ClassificationTask())
    loaded = trainer.state["trainable"]["encoder"]
    saved_leaves = jax.tree_util.tree_flatten_with_path({k: v for k, v in saved.items() if k != "norm"})[0]
    assert len(saved_leaves) == len(jax.tree.leaves(loaded)) > 10       # every encoder tensor
    for path, value in saved_leaves:
        np.testing.assert_array_equal(np.asarray(loaded_at(loaded, path)), np.asarray(value))
    results = trainer.run()
    assert results["steps"] == 4 and results["test"]["num_examples"] == 8


def loaded_at(tree, path):
    for key in path:
        tree = tree[getattr(key, "key", getattr(key, "idx", None))]
    return tree


def test_pretraining_resumes_after_sigterm_at_the_same_step(data_dir, tmp_path, monkeypatch):
    from mmae_jax.data import pipeline
    from mmae_jax.train.logs import read_metrics
    from mmae_jax.train.loop import pretrain

    real = pipeline.make_train_iterator

    def interrupted(*args, **kwargs):
        for step, batch in enumerate(real(*args, **kwargs), start=kwargs.get("start_step", 0) + 1):
            if step == 3:
                os.kill(os.getpid(), signal.SIGTERM)
            yield batch

    config = tiny(pretrain_demo.get_config(), data_dir, num_epochs=2)
    monkeypatch.setattr(pipeline, "make_train_iterator", interrupted)
    assert pretrain(config, tmp_path) == {"status": "preempted", "step": 3}
    monkeypatch.setattr(pipeline, "make_train_iterator", real)
    results = pretrain(config, tmp_path)
    steps = [r["step"] for r in read_metrics(tmp_path) if r["split"] == "train"]
    assert steps == list(range(1, 9)) and results["steps"] == 8
