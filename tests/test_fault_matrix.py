"""Faults injected into stored data, checkpoints, workdirs and running commands: each gives its
one line (an ``error:`` line with exit code 2, a warning, or the resume line of a stopped run)
and loses nothing (the stored data, every intact checkpoint, the old run).

Data faults: a flipped byte, a truncated shard, a shard cut at a record boundary, NaN / -inf
in a stored spectrogram. Checkpoint faults: a truncated array file, a missing metadata file,
every checkpoint damaged. Runs: Ctrl-C mid-run, a non-finite loss. The commands run in-process
(``mmae_jax.cli.main``) on the tiny dataset of ``stored_dataset.py``.
"""

import json
import os
import shutil
import signal
import struct
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from stored_dataset import tiny_argv, tiny_config

pytestmark = pytest.mark.xdist_group("fault_matrix")


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: "), err
    assert not any("Traceback" in line for line in err), err
    return err[-1]


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def train(data_dir, workdir, *extra) -> int:
    from mmae_jax.cli import main
    return main(["train", "--workdir", str(workdir), *tiny_argv(data_dir, *extra)])


# ---- damaged stored data ---------------------------------------------------------------------

def _records(shard: Path) -> list[bytes]:
    return [record.numpy() for record in tf.data.TFRecordDataset(str(shard))]


def _record_ends(data: bytes) -> list[int]:
    """Byte offsets where each TFRecord ends (length, length CRC, payload, payload CRC)."""
    ends, position = [], 0
    while position < len(data):
        position += 8 + 4 + struct.unpack("<Q", data[position:position + 8])[0] + 4
        ends.append(position)
    return ends


def damage(shard: Path, kind: str) -> str:
    """Damage ``shard`` the way ``kind`` says; returns the clip id of a changed example, if any."""
    data = bytearray(shard.read_bytes())
    if kind == "flipped_byte":
        data[len(data) // 2] ^= 0xFF
    elif kind == "truncated":
        data = data[:len(data) // 2 + 7]
    elif kind == "cut_at_record":
        data = data[:_record_ends(bytes(data))[len(_record_ends(bytes(data))) // 2]]
    elif kind == "missing":
        shard.unlink()
        return ""
    else:                                                     # "nan" / "-inf" in one spectrogram
        records = _records(shard)
        example = tf.train.Example.FromString(records[5])
        example.features.feature["spectrogram"].float_list.value[3] = float(kind)
        records[5] = example.SerializeToString()
        with tf.io.TFRecordWriter(str(shard)) as writer:
            for record in records:
                writer.write(record)
        return example.features.feature["clip_id"].bytes_list.value[0].decode()
    shard.write_bytes(bytes(data))
    return ""


@pytest.mark.parametrize("kind", ["flipped_byte", "truncated", "cut_at_record", "missing"])
def test_a_damaged_shard_is_named_with_the_rebuild_command(data_dir, tmp_path, capsys, kind):
    damaged = tmp_path / "data"
    shutil.copytree(data_dir, damaged)
    shard = next(damaged.glob("synthetic/*/*.tfrecord*"))
    damage(shard, kind)
    kept = files_of(damaged)
    assert train(damaged, tmp_path / "run") == 2
    line = one_error_line(capsys)
    assert f"the stored dataset {shard.parent} is damaged ({shard}: " in line
    assert {"cut_at_record": "records where dataset_info.json says 48",
            "missing": f"{shard}: missing"}.get(kind, "unreadable after") in line
    assert "--rebuild" in line and f"--data-dir {damaged}" in line
    assert files_of(damaged) == kept
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
@pytest.mark.parametrize("value", ["nan", "-inf"])
def test_a_non_finite_stored_spectrogram_names_the_clip(data_dir, tmp_path, capsys, value):
    damaged = tmp_path / "data"
    shutil.copytree(data_dir, damaged)
    clip = damage(next(damaged.glob("synthetic/*/*.tfrecord*")), value)
    assert train(damaged, tmp_path / "run") == 2
    line = one_error_line(capsys)
    assert f"the stored spectrogram of clip {clip} in " in line and "NaN or infinite" in line and "--rebuild" in line


def test_damaged_shards_counts_the_records_of_a_cut_shard(data_dir, tmp_path):
    from mmae_jax.data.integrity import damaged_shards

    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy)
    version = next(copy.glob("synthetic/*/dataset_info.json")).parent
    assert damaged_shards(version) == []
    shard = next(version.glob("*.tfrecord*"))
    damage(shard, "cut_at_record")
    assert damaged_shards(version) == [(shard, "25 records where dataset_info.json says 48")]    # records 0..24 kept


# ---- damaged checkpoints -------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished_run(data_dir, tmp_path_factory):
    """A two-step run with the checkpoints of steps 1 and 2."""
    workdir = tmp_path_factory.mktemp("finished") / "run"
    assert train(data_dir, workdir) == 0
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["1", "2"]
    return workdir


def _truncate_arrays(step_dir: Path) -> None:
    for file in (step_dir / "state").glob("ocdbt.process_0/d/*"):
        file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["truncated_array_file", "missing_metadata"])
def test_a_damaged_checkpoint_is_kept_aside_and_the_run_resumes_from_the_one_before(
        data_dir, finished_run, tmp_path, capsys, fault):
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir)
    (workdir / "results.json").unlink()                   # resume the run's last step from a checkpoint
    step_2 = workdir / "checkpoints" / "2"
    if fault == "truncated_array_file":
        _truncate_arrays(step_2)
    else:
        (step_2 / "state" / "_METADATA").unlink()
    damaged = files_of(step_2)
    assert train(data_dir, workdir) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "can not be read" in line]
    assert len(warnings) == 1 and "the checkpoint of step 2 can not be read" in warnings[0]
    assert f"kept in {workdir / 'damaged_checkpoints' / '2'}, resuming from step 1" in warnings[0]
    assert files_of(workdir / "damaged_checkpoints" / "2") == damaged           # kept as it was
    got, expected = (json.loads((run / "results.json").read_text()) for run in (workdir, finished_run))
    assert got["test"] == expected["test"] and got["validation_history"] == expected["validation_history"]


@pytest.mark.slow
def test_no_readable_checkpoint_is_one_line_and_nothing_moves(data_dir, finished_run, tmp_path, capsys):
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir)
    (workdir / "results.json").unlink()
    for step in ("1", "2"):
        _truncate_arrays(workdir / "checkpoints" / step)
    kept = files_of(workdir / "checkpoints")
    assert train(data_dir, workdir) == 2
    line = one_error_line(capsys)
    assert f"no checkpoint in {workdir / 'checkpoints'} can be read (step 2: " in line and "step 1: " in line
    assert files_of(workdir / "checkpoints") == kept and not (workdir / "damaged_checkpoints").exists()


@pytest.mark.slow
def test_evaluate_a_step_under_an_override_that_changes_the_model_is_one_line(finished_run, capsys):
    from mmae_jax.cli import main

    assert main(["evaluate", "--workdir", str(finished_run), "--model", "2", "--config.model.variant=small"]) == 2
    line = one_error_line(capsys)
    assert "model 2 of " in line and "can not be restored under --config.model.variant=small" in line
    assert not (finished_run / "evaluations").exists()


# ---- interrupted and diverging runs -------------------------------------------------------

@pytest.mark.slow
def test_ctrl_c_saves_exits_130_and_the_resumed_run_gives_the_uninterrupted_result(
        data_dir, finished_run, tmp_path, monkeypatch, capsys):
    from mmae_jax.data import pipeline
    from mmae_jax.errors import EXIT_INTERRUPTED

    real = pipeline.make_train_iterator
    handler_before = signal.getsignal(signal.SIGINT)   # SIG_IGN where the suite runs in the background

    def interrupted(*args, **kwargs):           # Ctrl-C while step 1 runs: step 1 is saved, 2 is not run
        for step, batch in enumerate(real(*args, **kwargs), start=kwargs.get("start_step", 0) + 1):
            if step == 1:
                os.kill(os.getpid(), signal.SIGINT)
            yield batch

    workdir = tmp_path / "run"
    monkeypatch.setattr(pipeline, "make_train_iterator", interrupted)
    assert train(data_dir, workdir) == EXIT_INTERRUPTED == 130
    assert "stopped by Ctrl-C (SIGINT) at step 1; run the same command to resume (exit code 130)" in \
        capsys.readouterr().out
    assert (workdir / "checkpoints" / "1").is_dir() and not (workdir / "results.json").exists()
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGINT) is handler_before      # Ctrl-C handling given back as it was
    assert train(data_dir, workdir) == 0
    got, expected = (json.loads((run / "results.json").read_text()) for run in (workdir, finished_run))
    assert got["test"] == expected["test"] and got["validation_history"] == expected["validation_history"]


def test_a_second_ctrl_c_interrupts_at_once():
    from mmae_jax.train.checkpointing import PreemptionWatcher

    with PreemptionWatcher() as watcher:
        os.kill(os.getpid(), signal.SIGINT)
        assert watcher.requested() and watcher.signal_name == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.slow
def test_a_non_finite_loss_is_one_line_naming_the_step_and_quantity(data_dir, tmp_path, capsys):
    assert train(data_dir, tmp_path / "run", "--config.optim.lr=1e30", "--config.max_steps=2") == 2
    line = one_error_line(capsys)
    assert line.startswith("error: training stopped at step ") and ("loss is nan" in line or "grad_norm is" in line)
    assert "optim.lr" in line


# ---- config faults found before anything is written --------------------------------------

@pytest.mark.parametrize("override, fragment", [
    ("--config.eval.views=('nonsense',)", "eval.views='nonsense' is not known"),
    ("--config.checkpoint.every_steps=0", "checkpoint.every_steps=0 must be a positive integer"),
    ("--config.checkpoint.keep=0", "checkpoint.keep=0 must be a positive integer"),
    ("--config.data.rfas_order=sometimes", "data.rfas_order='sometimes' is not known"),
    ("--config.data.frame_sampling=notebook_timing", "needs a build made with window_layout='spanning'"),
    ("--config.data.strategy=fsl", "data.strategy='fsl' is not known"),
    ("--config.mesh.data=4", "mesh data=4 x fsdp=1 needs 4 devices"),
])
def test_config_faults_are_one_line_before_the_workdir_is_made(data_dir, tmp_path, capsys, override, fragment):
    assert train(data_dir, tmp_path / "run", override) == 2
    assert fragment in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("changes, fragment", [
    (dict(batch_size=6), "batch_size=6 does not split over the 4 devices"),
    ({"eval.batch_size": 6}, "eval.batch_size=6 does not split over the 4 devices"),
    ({"mesh.fsdp": 3}, "mesh.fsdp=3 does not divide the 4 devices"),
    ({"mesh.data": 0}, "is not a mesh"),
])
def test_batch_and_mesh_are_checked_against_the_devices(data_dir, changes, fragment):
    from mmae_jax.errors import ConfigError
    from mmae_jax.config.validate import validate_devices

    validate_devices(tiny_config(data_dir), device_count=4)           # batch 8, eval batch 16: fine
    with pytest.raises(ConfigError, match=fragment):
        validate_devices(tiny_config(data_dir, **changes), device_count=4)


def test_every_allowed_eval_view_is_one_the_eval_step_knows():
    from mmae_jax.train.steps import make_eval_step
    from mmae_jax.config.choices import EVAL_VIEWS

    make_eval_step(None, None, EVAL_VIEWS, normalization=None)       # raises for a view it lacks


def test_workdir_that_is_a_file_is_one_line(data_dir, tmp_path, capsys):
    (tmp_path / "run").write_text("notes")
    assert train(data_dir, tmp_path / "run") == 2
    assert "--workdir " in one_error_line(capsys) and (tmp_path / "run").read_text() == "notes"


def test_fresh_moves_only_a_run_and_only_after_the_config_is_valid(data_dir, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "here"
    folder.mkdir()
    (folder / "thesis.tex").write_text("keep me")
    monkeypatch.chdir(folder)
    assert train(data_dir, ".", "--fresh", "--config.data.data_dir=/missing") == 2
    assert "data.data_dir=/missing" in one_error_line(capsys)
    assert train(data_dir, ".", "--fresh", "--config.checkpoint.keep=0") == 2
    assert "checkpoint.keep=0" in one_error_line(capsys)
    from mmae_jax.errors import WorkdirError
    from mmae_jax.train.workdir import move_aside

    with pytest.raises(WorkdirError, match="holds no mmae-jax run"):
        move_aside(folder)
    assert files_of(folder) == {"thesis.tex": b"keep me"} and sorted(os.listdir(tmp_path)) == ["here"]


# ---- the data a run trains on ---------------------------------------------------------------

@pytest.mark.slow
def test_resuming_on_other_data_is_refused_unless_allowed_and_then_recorded(data_dir, finished_run, tmp_path,
                                                                          capsys):
    from stored_dataset import write_stored_dataset

    other = tmp_path / "other"
    write_stored_dataset(other, num_speakers=11)                   # one speaker fewer
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir)
    recorded = json.loads((workdir / "data_fingerprint.json").read_text())
    assert recorded["splits"]["train"]["examples"] == 32 and recorded["changes"] == []
    assert train(other, workdir) == 2
    line = one_error_line(capsys)
    assert "the data differs from the data" in line and "train: 32 clips, sha256 " in line and "-> 28 clips" in line
    assert "checkpoint.allow_data_change=true" in line
    assert json.loads((workdir / "data_fingerprint.json").read_text()) == recorded
    assert train(other, workdir, "--config.checkpoint.allow_data_change=true") == 0
    assert "allowed by checkpoint.allow_data_change" in capsys.readouterr().err
    changed = json.loads((workdir / "data_fingerprint.json").read_text())
    assert changed["splits"]["train"]["examples"] == 28 and changed["changes"][0]["from"] == recorded["splits"]


def test_checkpoints_without_config_json_are_refused(data_dir, tmp_path, capsys):
    workdir = tmp_path / "run"
    (workdir / "checkpoints" / "4").mkdir(parents=True)
    assert train(data_dir, workdir, "--config.optim.lr=0.01") == 2
    line = one_error_line(capsys)
    assert "holds checkpoints or results but no config.json" in line and "--fresh" in line
    assert sorted(os.listdir(workdir)) == ["checkpoints"]


# ---- sweeps, evaluation, export --------------------------------------------------------------

@pytest.mark.parametrize("argv, fragment", [
    (["kfold", "--folds", "1,1"], "names fold 1 more than once"),
    (["sweep", "--folds", "3"], "--folds 3 is used only with --kfold"),
])
def test_fold_mistakes_are_refused(data_dir, tmp_path, capsys, argv, fragment):
    from mmae_jax.cli import main

    assert main([*argv, "--workdir", str(tmp_path / "sweep"), *tiny_argv(data_dir)]) == 2
    assert fragment in one_error_line(capsys)
    assert not (tmp_path / "sweep").exists()


def test_an_empty_evaluation_split_is_an_error_not_a_nan(data_dir, monkeypatch):
    from mmae_jax.errors import InputError
    from mmae_jax.train import evaluate

    monkeypatch.setattr(evaluate, "predict_split",
                        lambda *args, **kwargs: (np.zeros((0, 0), np.float32), np.zeros((0,), np.int64)))
    data = tiny_config(data_dir, **{"data.protocol": "hicmae", "data.fold": 2}).data
    with pytest.raises(InputError, match=r"the validation split of synthetic \(protocol hicmae, fold 2\) holds no"):
        evaluate.evaluate_split(None, None, data, "validation", ["a", "b"], batch_size=8, sharding=None)


def test_export_into_an_existing_folder_is_one_line(tmp_path, capsys):
    from mmae_jax.cli import main
    from stored_dataset import save_tiny_model

    save_tiny_model(tmp_path / "model")
    (tmp_path / "out").mkdir()
    assert main(["export", "--checkpoint", str(tmp_path / "model"), "--format", "pytorch",
                 "--output", str(tmp_path / "out")]) == 2
    assert "is a folder, but --format pytorch writes one file" in one_error_line(capsys)
    assert os.listdir(tmp_path / "out") == []


def test_waiting_for_a_coordinator_that_never_starts_gives_up_in_one_line():
    import socket
    import time

    from mmae_jax.errors import UserError
    from mmae_jax.train.mesh import _wait_for_coordinator

    with socket.socket() as probe:                  # a port nobody listens on
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(UserError, match=f"no coordinator answered at localhost:{port} within 1 s"):
        _wait_for_coordinator(f"localhost:{port}", 1)
    assert time.monotonic() - started < 10
