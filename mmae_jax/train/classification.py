"""The fine-tuning / linear-probe task: validation every N epochs, test at the best-validation
epoch and at the last one, ``results.json`` with both, plots, ``best_model/`` and ``final_model/``."""

from __future__ import annotations

import math

import jax

from mmae_jax.model.encoder import VideoMAEClassifier, trainable_filter
from mmae_jax.train.evaluation import evaluate_split
from mmae_jax.train.logs import MetricWriter, read_metrics, write_test_summary
from mmae_jax.train.plots import plot_confusion, plot_training_curves
from mmae_jax.train.steps import classification_loss, make_eval_step


def _summary(report: dict) -> dict:
    return {k: report[k] for k in ("war", "uar", "per_class_recall", "num_examples")}


class ClassificationTask:
    kind = "classifier"
    model_class = VideoMAEClassifier

    def __init__(self):
        self._eval_step = None

    def trainable_filter(self, cfg):
        return trainable_filter(cfg)

    def loss(self, trainer):
        return classification_loss(trainer.config.optim, len(trainer.class_names))

    def evaluate(self, trainer, split: str) -> dict:
        """WAR, UAR, per-class recall and confusion of ``split`` with the current weights."""
        if self._eval_step is None:
            self._eval_step = jax.jit(make_eval_step(trainer.parts.eval_graphdef, trainer.parts.rest,
                                                     tuple(trainer.config.eval.views),
                                                     normalization=trainer.config.data.normalization))
        return evaluate_split(self._eval_step, trainer.state, trainer.config.data, split, trainer.class_names,
                              batch_size=trainer.config.eval.batch_size, sharding=trainer.data_sharding)

    def end_of_epoch(self, trainer, step: int, extra: dict, writer: MetricWriter) -> None:
        if trainer.dataset.num_examples("validation") == 0 or not trainer.should_evaluate(step):
            return
        epoch = math.ceil(step / trainer.steps_per_epoch)
        val = self.evaluate(trainer, "validation")
        writer.write(step, dict(war=val["war"], uar=val["uar"], epoch=epoch), "validation")
        extra["history"].append(dict(step=step, epoch=epoch, war=val["war"], uar=val["uar"]))
        best = extra["best"]
        if best is None or (val["uar"], val["war"]) > (best["validation"]["uar"], best["validation"]["war"]):
            test = self.evaluate(trainer, "test")
            extra["best"] = dict(step=step, epoch=epoch, validation=_summary(val), test=_summary(test),
                                 test_confusion_matrix=test["confusion_matrix"])
            trainer.export("best_model")

    def finish(self, trainer, extra: dict) -> dict:
        test = self.evaluate(trainer, "test")
        trainer.export("final_model")
        results = dict(trainer.run_summary(), class_names=trainer.class_names,
                       test=_summary(test) | {"confusion_matrix": test["confusion_matrix"]},
                       test_at_best_validation=extra["best"], validation_history=extra["history"])
        if trainer.is_main:
            data = trainer.config.data
            run = f"{data.dataset} / {data.strategy} / {data.protocol} fold {data.fold}"
            confusion_png, _ = plot_confusion(test["confusion_matrix"], trainer.class_names,
                                              trainer.workdir / "confusion_test.png", f"{run}: test, last epoch",
                                              war=test["war"], uar=test["uar"])
            plot_training_curves(read_metrics(trainer.workdir), trainer.workdir / "training_curves.png", run)
            write_test_summary(trainer.workdir, trainer.total_steps, results["config"], results, confusion_png)
        return results
