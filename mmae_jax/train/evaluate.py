"""Evaluating a finished (or interrupted) training workdir on one split."""

from __future__ import annotations

import json
from pathlib import Path

import ml_collections

from mmae_jax.train.plots import plot_confusion


def evaluate_workdir(workdir: str | Path, split: str = "test") -> dict:
    """Restore the latest checkpoint of ``workdir``, evaluate ``split``, write ``eval_<split>.json``."""
    from mmae_jax.train.classification import ClassificationTask
    from mmae_jax.train.loop import Trainer

    workdir = Path(workdir).absolute()
    config_path = workdir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} not found: {workdir} is not a training workdir")
    config = ml_collections.ConfigDict(json.loads(config_path.read_text()))
    task = ClassificationTask()
    trainer = Trainer(config, workdir, task)
    step, _ = trainer.restore()
    if step == 0:
        raise FileNotFoundError(f"{workdir}/checkpoints holds no checkpoint to evaluate")
    report = task.evaluate(trainer, split) | {"step": step, "split": split}
    if trainer.is_main:
        (workdir / f"eval_{split}.json").write_text(json.dumps(report, indent=2) + "\n")
        plot_confusion(report["confusion_matrix"], trainer.class_names, workdir / f"confusion_{split}.png",
                       f"{split}, step {step}: WAR {report['war']:.1f}%, UAR {report['uar']:.1f}%")
    return report
