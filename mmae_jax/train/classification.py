"""The fine-tuning / linear-probe task: validation every N epochs, test at the best-validation
epoch and at the last one, ``results.json`` with both, plots (mmae_jax/train/plots.py: the
training curves and the confusion matrix of each model the results report), ``best_model/`` and
``final_model/``."""

from __future__ import annotations

import dataclasses
from typing import Iterator

import ml_collections

from mmae_jax.data import pipeline
from mmae_jax.data.source import StoredDataset, open_dataset
from mmae_jax.train.evaluate import empty_split_error, evaluate_split
from mmae_jax.train.logs import MetricWriter, read_metrics, write_test_summary
from mmae_jax.train.plots import plot_confusion, plot_training_curves, reported_confusions

from mmae_jax.train.tasks import Params, RunContext, TaskState


def _summary(report: dict) -> dict:
    return {k: report[k] for k in ("war", "uar", "per_class_recall", "num_examples")}


@dataclasses.dataclass
class ClassificationState(TaskState):
    """The validation rows so far, and the test report at the best validation (UAR, then WAR)."""

    history: list[dict] = dataclasses.field(default_factory=list)   # {step, epoch, war, uar, loss}
    best: dict | None = None         # {step, epoch, validation, test, test_confusion_matrix}


class ClassificationTask:
    state_class = ClassificationState

    def open_data(self, config: ml_collections.ConfigDict) -> StoredDataset:
        """The stored dataset; InputError when its train or test split is empty (checked
        before training, so a run never ends in a NaN score)."""
        dataset = open_dataset(config.data)
        for split in ("train", "test"):
            if dataset.num_examples(split) == 0:
                raise empty_split_error(config.data, split)
        return dataset

    def train_batches(self, context: RunContext, start_step: int) -> Iterator[dict]:
        return pipeline.make_train_iterator(context.config.data, global_batch_size=context.config.batch_size,
                                            sharding=context.data_sharding, start_step=start_step)

    def evaluate(self, context: RunContext, params: Params, split: str) -> dict:
        """WAR, UAR, per-class recall and confusion of ``split`` with ``params``."""
        config = context.config
        return evaluate_split(context.eval_step, params, config.data, split, context.class_names,
                              batch_size=config.eval.batch_size, sharding=context.data_sharding)

    def at_evaluation(self, context: RunContext, step: int, params: Params, state: ClassificationState,
                      writer: MetricWriter) -> ClassificationState:
        if context.dataset.num_examples("validation") == 0:
            return state
        epoch = context.epoch(step)
        val = self.evaluate(context, params, "validation")
        writer.write(step, dict(war=val["war"], uar=val["uar"], loss=val["loss"], epoch=epoch), "validation")
        history = [*state.history, dict(step=step, epoch=epoch, war=val["war"], uar=val["uar"], loss=val["loss"])]
        best = state.best
        if best is None or (val["uar"], val["war"]) > (best["validation"]["uar"], best["validation"]["war"]):
            test = self.evaluate(context, params, "test")
            best = dict(step=step, epoch=epoch, validation=_summary(val), test=_summary(test),
                        test_confusion_matrix=test["confusion_matrix"])
            context.export("best_model", params)
        return ClassificationState(history=history, best=best)

    def finish(self, context: RunContext, params: Params, state: ClassificationState) -> dict:
        test = self.evaluate(context, params, "test")
        context.export("final_model", params)
        results = dict(context.run_summary(), class_names=context.class_names,
                       test=_summary(test) | {"confusion_matrix": test["confusion_matrix"]},
                       test_at_best_validation=state.best, validation_history=state.history)
        if context.is_main:
            data = context.config.data
            run = f"{data.dataset} / {data.strategy} / {data.protocol} fold {data.fold}"
            images = {f"{key}/confusion": plot_confusion(report["confusion_matrix"], context.class_names,
                                                          context.workdir / f"confusion_{key}.png", f"{run}: {which}",
                                                          war=report["war"], uar=report["uar"])[0]
                      for key, which, report in reported_confusions(results)}
            plot_training_curves(read_metrics(context.workdir), context.workdir / "training_curves.png", run)
            write_test_summary(context.workdir, context.total_steps, results["config"], results, images)
        return results
