"""Evaluating a finished (or interrupted) training workdir on one split."""

from __future__ import annotations

import json
from pathlib import Path

import ml_collections

from mmae_jax.train import checkpointing
from mmae_jax.train.plots import plot_confusion


def evaluate_workdir(workdir: str | Path, split: str = "test") -> dict:
    """Restore the latest checkpoint of ``workdir``, evaluate ``split``, write ``eval_<split>.json``."""
    from mmae_jax.train.loop import Trainer

    workdir = Path(workdir).absolute()
    config_path = workdir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} not found: {workdir} is not a training workdir")
    config = ml_collections.ConfigDict(json.loads(config_path.read_text()))
    trainer = Trainer(config, workdir)
    restored = checkpointing.restore_latest(
        trainer.manager, checkpointing.abstract_like(trainer.state, trainer.state_shardings))
    if restored is None:
        raise FileNotFoundError(f"{workdir}/checkpoints holds no checkpoint to evaluate")
    step, trainer.state, _ = restored
    report = trainer.evaluate(split) | {"step": step, "split": split}
    if trainer.is_main:
        (workdir / f"eval_{split}.json").write_text(json.dumps(report, indent=2) + "\n")
        plot_confusion(report["confusion_matrix"], trainer.class_names, workdir / f"confusion_{split}.png",
                       f"{split}, step {step}: WAR {report['war']:.1f}%, UAR {report['uar']:.1f}%")
    return report
