"""The train loop on a tiny stored dataset: loss falls, results are written, NaN stops it."""

import json
import math

import numpy as np
import pytest

from stored_dataset import task_with_batches, tiny_config


# The tests that read one finished run share it: one xdist worker runs them (`--dist loadgroup`).
uses_trained = pytest.mark.xdist_group("trained")


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """``(workdir, results)`` of the tiny experiment: 3 epochs of 4 steps, evaluated every epoch."""
    from mmae_jax.train.loop import train_and_evaluate

    workdir = tmp_path_factory.mktemp("trained")
    return workdir, train_and_evaluate(tiny_config(data_dir), workdir)


@uses_trained
def test_training_lowers_loss_and_writes_results(trained):
    from mmae_jax.train.logs import read_metrics

    workdir, results = trained
    losses = [r["loss"] for r in read_metrics(workdir) if r["split"] == "train"]
    assert len(losses) == results["steps"] == 3 * math.ceil(32 / 8)     # 8 of 12 speakers train
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    saved = json.loads((workdir / "results.json").read_text())
    assert saved["strategy"] == "fslf" and saved["test"]["num_examples"] == 8
    assert set(saved["test"]["per_class_recall"]) == {f"class{i}" for i in range(4)}
    # WAR, UAR and recalls are those of the saved confusion matrix, and above chance (25 %): the
    # label is visible in both modalities (this run gets 4 of 8 test clips right).
    matrix = np.array(saved["test"]["confusion_matrix"])
    recall = 100 * np.diag(matrix) / matrix.sum(axis=1)              # every class has 2 test clips
    assert matrix.sum() == 8 and saved["test"]["war"] == pytest.approx(100 * np.trace(matrix) / 8)
    assert [saved["test"]["per_class_recall"][f"class{i}"] for i in range(4)] == pytest.approx(recall)
    assert saved["test"]["uar"] == pytest.approx(recall.mean())
    assert saved["test"]["war"] > 25.0
    assert saved["test_at_best_validation"]["epoch"] in (1, 2, 3)
    assert (workdir / "confusion_test.png").stat().st_size > 5_000          # a drawn matrix
    assert (workdir / "final_model" / "config.json").is_file()


@uses_trained
def test_evaluate_command_writes_the_split_report(trained):
    from mmae_jax.cli import main

    workdir, results = trained
    saved_config, saved_results = (workdir / "config.json").read_bytes(), (workdir / "results.json").read_bytes()
    assert main(["evaluate", "--workdir", str(workdir), "--split", "test"]) == 0
    report = json.loads((workdir / "evaluations" / "final_test" / "results.json").read_text())
    assert report["num_examples"] == 8 and report["step"] == results["steps"]
    assert report["war"] == pytest.approx(results["test"]["war"])
    assert report["confusion_matrix"] == results["test"]["confusion_matrix"]
    # the training run's files are left as they were
    assert (workdir / "config.json").read_bytes() == saved_config
    assert (workdir / "results.json").read_bytes() == saved_results


def test_nan_in_the_data_stops_training_with_the_step(data_dir, tmp_path):
    from mmae_jax.train import loop
    from mmae_jax.train.classification import ClassificationTask
    from mmae_jax.train.metrics import NonFiniteError

    def poisoned(step, batch):
        return dict(batch, video=batch["video"] * np.nan) if step == 3 else batch

    trainer = loop.Trainer(tiny_config(data_dir), tmp_path, task_with_batches(ClassificationTask, poisoned))
    with pytest.raises(NonFiniteError, match="step 3"):
        trainer.run()


def test_stored_dataset_is_read_from_files_even_when_builder_code_is_registered(data_dir):
    import mmae_jax.data_prep.synthetic.synthetic_dataset_builder  # noqa: F401  (registers "synthetic")
    from mmae_jax.data.source import load_builder

    config = tiny_config(data_dir)
    builder = load_builder(config.data)
    assert builder.info.splits["data"].num_examples == 48
    assert str(builder.data_dir).startswith(str(data_dir))


def test_itstime_is_due_at_every_multiple_and_at_the_last_step():
    from mmae_jax.train.loop import itstime

    assert [step for step in range(1, 24) if itstime(step, 5, 23)] == [5, 10, 15, 20, 23]
    # evaluation every 2nd epoch of 3 steps: the ends of epochs 2, 4, 6 and the last (partial) epoch
    steps_per_epoch, every_epochs = 3, 2
    assert [step for step in range(1, 24) if itstime(step, steps_per_epoch * every_epochs, 23)] == [6, 12, 18, 23]
    assert [step for step in range(1, 24) if itstime(step, 0, 23)] == [23]
