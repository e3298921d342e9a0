"""``--checkpoint`` means one thing in every command that reads a trained model: a model folder,
or a training run folder whose ``--model best|final|STEP`` is read; anything else is one
``error:`` line naming the path, what it is and what is wrong (mmae_jax/model/location.py).

The run folders here are laid out as training writes them (``best_model/``, ``final_model/``
by ``save_model``, ``checkpoints/STEP/`` by the train loop's own checkpoint manager), each
model with other random weights, so that a command reading the wrong one gives other numbers.
"""

from __future__ import annotations

import functools
import json
import re

import jax.numpy as jnp
import numpy as np
import pytest

from mmae_jax.cli import main
from mmae_jax.model import VideoMAEConfig
from mmae_jax.model import io as model_io
from mmae_jax.model.paths import flat_params

CLASSES = ["calm", "happy", "sad"]
CFG = VideoMAEConfig.from_variant("tiny", num_classes=len(CLASSES), num_frames=4, img_size=32)
STEP = 8


@functools.cache
def _param_shapes() -> dict[str, tuple[int, ...]]:
    """Name -> shape of every parameter of CFG's classifier."""
    return model_io.param_shapes(model_io.abstract_model(CFG, "classifier"))


def _params(seed: int) -> dict:
    """A parameter dict (name -> float32 array) of CFG's classifier, random with ``seed``."""
    rng = np.random.default_rng(seed)
    return {name: rng.normal(scale=0.1, size=shape).astype(np.float32) + (name.endswith(".scale"))
            for name, shape in _param_shapes().items()}


def _save(folder, params: dict, step: int) -> None:
    model = model_io.build_model(CFG, "classifier")
    model_io.assign_params(model, params)
    model_io.save_model(folder, model, CFG, kind="classifier",
                        metadata=dict(class_names=CLASSES, data=dict(dataset="synthetic"), step=step))


def _save_train_checkpoint(run, step: int, params: dict) -> None:
    """A train checkpoint of ``step`` as the train loop writes it: the head trainable, the rest frozen."""
    from mmae_jax.train import checkpointing

    def tree(names):
        nested = {}
        for name in names:
            *parents, leaf = name.split(".")
            node = nested
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = jnp.asarray(params[name])
        return nested

    trainable = [name for name in params if name.startswith("head.")]
    state = dict(step=jnp.asarray(step, jnp.int32), opt_state=dict(count=jnp.zeros((), jnp.int32)),
                 trainable=tree(trainable), frozen=tree(sorted(set(params) - set(trainable))))
    manager = checkpointing.checkpoint_manager(run, keep=3, every_steps=1)
    checkpointing.save(manager, step, state, {}, force=True)
    manager.wait_until_finished()
    manager.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished run folder: best_model/ (step 4), final_model/ (step 12), train checkpoint 8."""
    run = tmp_path_factory.mktemp("run")
    (run / "config.json").write_text(json.dumps({"task": "classification", "data": {"dataset": "synthetic"}}))
    _save(run / "best_model", _params(1), step=4)
    _save(run / "final_model", _params(2), step=12)
    _save_train_checkpoint(run, STEP, _params(3))
    return run


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "x.npy"
    np.save(path, np.random.default_rng(0).normal(size=(2, 3, 4, 32, 32)).astype(np.float32))
    return path


def _expected_logits(params: dict, clips_path) -> np.ndarray:
    model = model_io.build_model(CFG, "classifier")
    model_io.assign_params(model, params)
    model.eval()
    x = np.load(clips_path).transpose(0, 2, 3, 4, 1)
    return np.asarray(model(jnp.asarray(x)))


def _forward(checkpoint, clips, out, *model) -> np.ndarray:
    assert main(["forward", "--checkpoint", str(checkpoint), *model, "--input", str(clips),
                 "--output", str(out)]) == 0
    return np.load(out)


def _fails(capsys, argv: list[str]) -> str:
    """The one ``error:`` line of a command that fails with exit 2 (after at most the line naming
    the model of a run folder that it was reading)."""
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("error: ") and len(lines) <= 2 and lines[0].startswith(("error: ", "model: ")), lines
    return lines[-1]


# --- one rule: which model each value reads -----------------------------------------------------
@pytest.mark.parametrize("model, seed", [((), 1), (("--model", "best"), 1), (("--model", "final"), 2),
                                         (("--model", str(STEP)), 3)])
def test_forward_reads_the_runs_chosen_model(run, clips, tmp_path, capsys, model, seed):
    got = _forward(run, clips, tmp_path / "y.npy", *model)
    np.testing.assert_allclose(got, _expected_logits(_params(seed), clips), atol=1e-5)
    assert "model: " + str(run) in capsys.readouterr().err        # a run folder says which model it read


def test_forward_reads_a_model_folder_as_it_is(run, clips, tmp_path, capsys):
    got = _forward(run / "final_model", clips, tmp_path / "y.npy")
    np.testing.assert_allclose(got, _expected_logits(_params(2), clips), atol=1e-5)
    assert "model: " not in capsys.readouterr().err


def test_a_run_without_best_model_defaults_to_final(run, tmp_path):
    from mmae_jax.model.location import resolve_checkpoint

    pretraining = tmp_path / "pretrain_run"
    _save(pretraining / "final_model", _params(2), step=12)
    choice = resolve_checkpoint(pretraining)
    assert choice.directory == pretraining / "final_model" and choice.from_run
    assert resolve_checkpoint(run).directory == run / "best_model"


def test_a_step_keeps_the_model_config_and_reports_its_own_step(run):
    from mmae_jax.model.location import resolve_checkpoint

    cfg, kind, metadata = resolve_checkpoint(run, str(STEP)).read_config()
    assert (cfg, kind, metadata["step"], metadata["class_names"]) == (CFG, "classifier", STEP, CLASSES)


def test_model_info_and_export_take_the_same_values(run, tmp_path, capsys):
    assert main(["model-info", "--checkpoint", str(run), "--model", str(STEP)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"classes\s+3\n", out) and "4 x 32 x 32 x 3" in out
    from safetensors.numpy import load_file

    assert main(["export", "--checkpoint", str(run), "--model", "final", "--format", "safetensors",
                 "--output", str(tmp_path / "final.safetensors")]) == 0
    assert main(["export", "--checkpoint", str(run), "--model", str(STEP), "--format", "safetensors",
                 "--output", str(tmp_path / "step.safetensors")]) == 0
    final, step = load_file(tmp_path / "final.safetensors"), load_file(tmp_path / "step.safetensors")
    # the same model of other weights: the head of train step 8, not of final_model
    head = "head.weight"
    np.testing.assert_allclose(step[head], _params(3)["head.kernel"].T, atol=0)
    np.testing.assert_allclose(final[head], _params(2)["head.kernel"].T, atol=0)


# --- errors: one line, naming the path, what it is and what is wrong -----------------------------
def test_model_with_a_model_folder_is_refused(run, clips, tmp_path, capsys):
    err = _fails(capsys, ["forward", "--checkpoint", str(run / "final_model"), "--model", "best",
                          "--input", str(clips), "--output", str(tmp_path / "y.npy")])
    assert f"--checkpoint {run / 'final_model'} is a model folder" in err and "drop --model" in err


def test_a_step_that_was_not_saved_lists_the_saved_ones(run, clips, tmp_path, capsys):
    err = _fails(capsys, ["forward", "--checkpoint", str(run), "--model", "5",
                          "--input", str(clips), "--output", str(tmp_path / "y.npy")])
    assert f"--checkpoint {run} is a training run folder without a train checkpoint of step 5" in err
    assert "saved: best, final, steps 8" in err
    (tmp_path / "clip.mp4").write_bytes(b"never read: the checkpoint is refused first")
    err = _fails(capsys, ["predict", "--checkpoint", str(run), "--model", "latest", str(tmp_path / "clip.mp4")])
    assert "--model 'latest' is not a model of a run" in err and "best|final|STEP" in err


@pytest.mark.parametrize("command", ["forward", "export", "predict", "model-info"])
def test_every_command_names_what_it_found(tmp_path, clips, capsys, command):
    extra = {"forward": ["--input", str(clips), "--output", str(tmp_path / "y.npy")],
             "export": ["--format", "safetensors", "--output", str(tmp_path / "m.safetensors")],
             "predict": [str(tmp_path / "clip.mp4")], "model-info": []}[command]
    (tmp_path / "clip.mp4").write_bytes(b"never read: the checkpoint is refused first")
    empty = tmp_path / "empty"
    empty.mkdir()
    err = _fails(capsys, [command, "--checkpoint", str(empty), *extra])
    assert f"--checkpoint {empty} is neither a model folder (config.json + params/) nor a training run folder" in err
    err = _fails(capsys, [command, "--checkpoint", str(clips), *extra])
    assert f"--checkpoint {clips} is a file" in err and "mmae-jax convert" in err
    err = _fails(capsys, [command, "--checkpoint", str(tmp_path / "missing"), *extra])
    assert f"--checkpoint {tmp_path / 'missing'} does not exist" in err


def test_damaged_model_folders_are_named_as_such(run, tmp_path, clips, capsys):
    import shutil

    damaged = tmp_path / "damaged_run"
    shutil.copytree(run, damaged)
    (damaged / "best_model" / "config.json").write_text("{not json")
    err = _fails(capsys, ["forward", "--checkpoint", str(damaged), "--input", str(clips),
                          "--output", str(tmp_path / "y.npy")])
    assert f"--checkpoint {damaged} is a training run folder, but its {damaged / 'best_model' / 'config.json'}" in err
    assert "not a valid model config" in err
    shutil.rmtree(damaged / "final_model" / "params")
    err = _fails(capsys, ["forward", "--checkpoint", str(damaged / "final_model"), "--input", str(clips),
                          "--output", str(tmp_path / "y.npy")])
    assert f"is a model folder, but {damaged / 'final_model' / 'params'} is missing" in err


def test_a_damaged_train_checkpoint_is_named_with_the_saved_alternatives(run, tmp_path, clips, capsys):
    import shutil

    damaged = tmp_path / "damaged_run"
    shutil.copytree(run, damaged)
    for path in (damaged / "checkpoints" / str(STEP) / "state").rglob("*"):
        if path.is_file() and path.stat().st_size > 1000:
            path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))
    err = _fails(capsys, ["forward", "--checkpoint", str(damaged), "--model", str(STEP), "--input", str(clips),
                          "--output", str(tmp_path / "y.npy")])
    assert f"{damaged / 'checkpoints' / str(STEP) / 'state'} can not be read" in err
    assert f"the train checkpoint of step {STEP} is damaged or incomplete; choose another --model" in err


def test_a_run_without_a_saved_model_says_so(tmp_path, capsys):
    started = tmp_path / "started"
    started.mkdir()
    (started / "config.json").write_text(json.dumps({"task": "classification", "data": {}}))
    err = _fails(capsys, ["model-info", "--checkpoint", str(started)])
    assert f"--checkpoint {started} is a training run folder without a saved model yet (nothing saved)" in err
    err = _fails(capsys, ["model-info", "--checkpoint", str(started), "--model", "final"])
    assert "without final_model/ (nothing saved)" in err


def test_model_without_checkpoint_is_refused(capsys):
    err = _fails(capsys, ["model-info", "--model", "best"])
    assert "no --checkpoint is given" in err


# --- a real run: its train checkpoints read as models -------------------------------------------
@pytest.mark.slow
def test_the_last_train_checkpoint_of_a_real_run_is_its_final_model(data_dir, tmp_path, clips):
    """Trains the tiny test experiment (12 steps); its final_model and its train checkpoint of
    the last step hold the same weights, read along the two paths of the rule."""
    from stored_dataset import tiny_config

    from mmae_jax.model.location import resolve_checkpoint, saved_steps
    from mmae_jax.train.loop import train_and_evaluate

    workdir = tmp_path / "real"
    results = train_and_evaluate(tiny_config(data_dir), workdir)
    assert saved_steps(workdir)[-1] == results["steps"]
    final = resolve_checkpoint(workdir, "final")
    step = resolve_checkpoint(workdir, str(results["steps"]))
    final_params = flat_params(final.load()[0])
    step_params = flat_params(step.load()[0])
    assert final_params.keys() == step_params.keys()
    for name, value in final_params.items():
        np.testing.assert_array_equal(np.asarray(step_params[name]), np.asarray(value), err_msg=name)
    earlier = resolve_checkpoint(workdir, str(saved_steps(workdir)[0]))
    assert earlier.read_config()[2]["step"] < results["steps"]
    assert not all(np.array_equal(np.asarray(a), np.asarray(flat_params(earlier.load()[0])[n]))
                   for n, a in final_params.items())
