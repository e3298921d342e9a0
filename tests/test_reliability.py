"""Runs that can not be the experiment asked for stop with one line; preempted runs say so.

Silent wrong results first: initial weights that do not fit, a workdir holding another run,
preemption of train / kfold. The commands are called in-process (``mmae_jax.cli.main``).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from stored_dataset import save_tiny_model, sigterm_at, task_with_batches, tiny_argv, tiny_config


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: "), err
    assert not any("Traceback" in line for line in err)
    return err[-1]


# ---- initial weights ---------------------------------------------------------------------

def test_init_that_leaves_encoder_tensors_random_is_refused(data_dir, tmp_path, capsys):
    from mmae_jax.cli import main

    save_tiny_model(tmp_path / "shallow", depth=2)        # blocks 2 and 3 are not in it
    rc = main(["train", "--workdir", str(tmp_path / "run"),
               *tiny_argv(data_dir, f"--config.init={tmp_path / 'shallow'}")])
    line = one_error_line(capsys)
    assert rc == 2
    assert "encoder.blocks.2.attn.qkv.kernel not in the checkpoint" in line
    assert "encoder.blocks.3.mlp.fc2.kernel not in the checkpoint" in line
    assert "init_allow_partial" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_partial_init_is_allowed_on_request_and_its_report_kept(data_dir, tmp_path, capsys):
    from mmae_jax.train.loop import train_and_evaluate

    save_tiny_model(tmp_path / "shallow", depth=2)
    config = tiny_config(data_dir, init=str(tmp_path / "shallow"), init_allow_partial=True, max_steps=1,
                         num_epochs=1)
    train_and_evaluate(config, tmp_path / "run")
    out = capsys.readouterr().out
    assert "loaded 32 tensors, 26 left at init" in out           # 2 of 4 blocks (13 tensors each)
    report = (tmp_path / "run" / "init_report.txt").read_text()
    assert "left at init (not in checkpoint): encoder.blocks.3.norm2.scale" in report


def test_init_report_is_printed_for_a_full_load(data_dir, tmp_path, capsys):
    from mmae_jax.train.loop import Trainer

    save_tiny_model(tmp_path / "same")
    Trainer(tiny_config(data_dir, init=str(tmp_path / "same"), max_steps=1, num_epochs=1), tmp_path / "run")
    assert "loaded 58 tensors, 0 left at init, 0 unused" in capsys.readouterr().out
    assert (tmp_path / "run" / "init_report.txt").is_file()


@pytest.mark.parametrize("kind", ["pth", "missing"])
def test_init_pointing_at_a_file_or_nothing_is_one_line(data_dir, tmp_path, capsys, kind):
    from mmae_jax.cli import main

    target = tmp_path / "model.pth"
    if kind == "pth":
        target.write_bytes(b"not a model directory")
    rc = main(["train", "--workdir", str(tmp_path / "run"), *tiny_argv(data_dir, f"--config.init={target}")])
    line = one_error_line(capsys)
    assert rc == 2
    assert ("mmae-jax convert --source" in line) if kind == "pth" else ("does not exist" in line)


# ---- workdirs ------------------------------------------------------------------------------

# The tests that read one finished run share it: one xdist worker runs them (`--dist loadgroup`).
uses_finished_run = pytest.mark.xdist_group("finished_run")


@pytest.fixture(scope="module")
def finished_run(data_dir, tmp_path_factory):
    from mmae_jax.cli import main

    workdir = tmp_path_factory.mktemp("finished")
    assert main(["train", "--workdir", str(workdir), *tiny_argv(data_dir)]) == 0
    return workdir


@uses_finished_run
def test_workdir_of_another_experiment_is_refused_and_config_kept(data_dir, finished_run, capsys):
    from mmae_jax.cli import main

    saved = (finished_run / "config.json").read_text()
    rc = main(["train", "--workdir", str(finished_run), *tiny_argv(data_dir, "--config.data.strategy=ffls")])
    line = one_error_line(capsys)
    assert rc == 2 and 'data.strategy: "fslf" -> "ffls"' in line and "--fresh" in line
    assert (finished_run / "config.json").read_text() == saved


@uses_finished_run
def test_same_experiment_resumes_to_the_same_results(data_dir, finished_run, capsys):
    from mmae_jax.cli import main

    before = json.loads((finished_run / "results.json").read_text())
    assert main(["train", "--workdir", str(finished_run), *tiny_argv(data_dir, "--config.eval.batch_size=8")]) == 0
    assert json.loads((finished_run / "results.json").read_text()) == before
    assert json.loads((finished_run / "config.json").read_text())["eval"]["batch_size"] == 8


def test_fresh_moves_the_old_run_aside(data_dir, tmp_path, capsys):
    from mmae_jax.cli import main

    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "results.json").write_text("{}")
    (workdir / "config.json").write_text(json.dumps({"data": {"strategy": "ffls"}}))
    assert main(["train", "--workdir", str(workdir), "--fresh",
                 *tiny_argv(data_dir, "--config.max_steps=1")]) == 0
    old = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert len(old) == 1 and json.loads((old[0] / "config.json").read_text()) == {"data": {"strategy": "ffls"}}
    assert json.loads((workdir / "config.json").read_text())["data"]["strategy"] == "fslf"


def test_saved_config_names_the_data_by_absolute_path(data_dir, tmp_path, monkeypatch):
    from mmae_jax.train.validate import validate_experiment
    from mmae_jax.train.workdir import check_saved_config

    monkeypatch.chdir(data_dir.parent)
    config = tiny_config(data_dir.name)                     # relative to the folder the run started in
    validate_experiment(config)
    check_saved_config(tmp_path, config)
    assert json.loads((tmp_path / "config.json").read_text())["data"]["data_dir"] == str(data_dir)


def test_a_second_run_in_a_workdir_in_use_stops(data_dir, tmp_path, capsys):
    import socket

    from mmae_jax.cli import main

    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "run.lock").write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname()}))
    rc = main(["train", "--workdir", str(workdir), *tiny_argv(data_dir)])
    assert rc == 2 and "in use by another run" in one_error_line(capsys)
    assert not (workdir / "checkpoints").exists()


def test_a_stale_lock_of_a_dead_process_is_replaced(tmp_path):
    import socket

    from mmae_jax.train.workdir import WorkdirLock

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "run.lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    with WorkdirLock(tmp_path):
        assert json.loads((tmp_path / "run.lock").read_text())["pid"] == os.getpid()
    assert not (tmp_path / "run.lock").exists()


# ---- preemption ------------------------------------------------------------------------------

def test_a_preempted_run_exits_75_and_says_so(data_dir, tmp_path, monkeypatch, capsys):
    from mmae_jax.cli import main
    from mmae_jax.errors import EXIT_PREEMPTED
    from mmae_jax.train import loop

    monkeypatch.setattr(loop, "train_and_evaluate", lambda config, workdir, **_: {"status": "preempted", "step": 1})
    assert main(["train", "--workdir", str(tmp_path / "other"), *tiny_argv(data_dir)]) == EXIT_PREEMPTED == 75
    assert "stopped by SIGTERM at step 1" in capsys.readouterr().out


@pytest.mark.slow            # two more in-process training runs (about 15 s)
@uses_finished_run
def test_sigterm_stops_after_the_step_and_the_resumed_run_gives_the_uninterrupted_result(data_dir, finished_run,
                                                                                       tmp_path):
    from mmae_jax.cli import main
    from mmae_jax.cli.runtime import load_config
    from mmae_jax.train import loop
    from mmae_jax.train.classification import ClassificationTask
    from mmae_jax.train.logs import read_metrics

    workdir = tmp_path / "run"
    config = load_config(tiny_argv(data_dir))                    # the config `mmae-jax train` runs
    interrupted = loop.Trainer(config, workdir, task_with_batches(ClassificationTask, sigterm_at(1)))
    assert interrupted.run() == {"status": "preempted", "step": 1, "signal": "SIGTERM"}
    assert not (workdir / "results.json").exists()
    with open(workdir / "metrics.jsonl", "a") as log:      # a row logged after the last checkpoint
        log.write(json.dumps({"step": 2, "split": "train", "loss": 9.0}) + "\n")
    assert main(["train", "--workdir", str(workdir), *tiny_argv(data_dir)]) == 0
    losses = {run: [(row["step"], row["loss"]) for row in read_metrics(run) if row["split"] == "train"]
              for run in (workdir, finished_run)}
    assert [step for step, _ in losses[workdir]] == [1, 2]
    np.testing.assert_allclose(losses[workdir], losses[finished_run], rtol=1e-5)
    got, expected = (json.loads((run / "results.json").read_text()) for run in (workdir, finished_run))
    assert got["test"] == expected["test"] and got["validation_history"] == expected["validation_history"]


def test_kfold_stops_at_a_preempted_fold_and_the_summary_says_so(data_dir, tmp_path, monkeypatch, capsys):
    from mmae_jax.cli import main
    from mmae_jax.train import sweep

    calls = []

    def fake(config, workdir, validate=True):
        calls.append(config.data.fold)
        if config.data.fold == 1:
            return {"status": "preempted", "step": 3}
        return {"test": {"war": 50.0, "uar": 40.0}}

    monkeypatch.setattr(sweep, "train_and_evaluate", fake)
    rc = main(["kfold", "--workdir", str(tmp_path), "--folds", "0,1,2", *tiny_argv(data_dir)])
    out = capsys.readouterr().out
    assert rc == 75 and calls == [0, 1]
    assert "| fslf | - | 1 of 3 (unfinished: fold 1, fold 2) |" in out
    assert "unfinished" in (tmp_path / "summary.md").read_text()
