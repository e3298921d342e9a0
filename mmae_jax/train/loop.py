"""``train_and_evaluate(config, workdir)``: the one train loop, called by the CLI and tests.

Per epoch: train steps, validation (WAR/UAR), test whenever validation improves (the
best-validation numbers), checkpoint. At the end: test on the last epoch's weights,
``results.json``, plots, and the exported ``final_model/`` (and ``best_model/``) that
``predict`` and ``init=`` load.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from tqdm import tqdm

from mmae_jax.data import pipeline
from mmae_jax.data.source import open_dataset
from mmae_jax.model import io as model_io
from mmae_jax.train import checkpointing
from mmae_jax.train.evaluation import evaluate_split
from mmae_jax.train.logs import MetricWriter, read_metrics
from mmae_jax.train.mesh import batch_sharding, create_mesh, replicated
from mmae_jax.train.optimizer import make_optimizer
from mmae_jax.train.plots import plot_confusion, plot_training_curves
from mmae_jax.train.state import create_train_state, init_model_parts, model_config
from mmae_jax.train.steps import make_eval_step, make_train_step

log = logging.getLogger(__name__)


class NonFiniteError(FloatingPointError):
    """The loss or the gradient norm became NaN or Inf."""


def _report_summary(report: dict) -> dict:
    return {k: report[k] for k in ("war", "uar", "per_class_recall", "num_examples")}


class Trainer:
    """Everything one run needs: mesh, data, model parts, optimiser, jitted steps, checkpoints."""

    def __init__(self, config: ml_collections.ConfigDict, workdir: str | Path):
        self.config = config
        self.workdir = Path(workdir).absolute()
        self.is_main = jax.process_index() == 0
        if self.is_main:
            self.workdir.mkdir(parents=True, exist_ok=True)
            (self.workdir / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")
        self.mesh = create_mesh(config.mesh.data, config.mesh.fsdp)
        if config.batch_size % self.mesh.size:
            raise ValueError(f"batch_size {config.batch_size} is not divisible by the {self.mesh.size} devices")
        self.data_sharding = batch_sharding(self.mesh)
        self.dataset = open_dataset(config.data)
        self.class_names = self.dataset.class_names
        self.model_cfg = model_config(config, len(self.class_names))

        train_size = self.dataset.num_examples("train")
        if train_size == 0:
            raise ValueError(f"the train split of {config.data.dataset} (protocol {config.data.protocol}, "
                             f"fold {config.data.fold}) is empty")
        self.steps_per_epoch = math.ceil(train_size / config.batch_size)
        self.total_steps = config.num_epochs * self.steps_per_epoch
        if config.max_steps > 0:
            self.total_steps = min(self.total_steps, config.max_steps)
        accum = config.optim.grad_accum_steps

        parts, param_shardings = init_model_parts(self.model_cfg, config.seed, self.mesh,
                                                  config.mesh.min_shard_size, config.init)
        self.parts = parts
        tx, self.schedule = make_optimizer(
            config.optim, parts.trainable, depth=self.model_cfg.depth,
            total_updates=max(self.total_steps // accum, 1),
            updates_per_epoch=max(self.steps_per_epoch // accum, 1), batch_size=config.batch_size * accum)
        self.state, self.state_shardings = create_train_state(parts, param_shardings, tx, self.mesh,
                                                              config.mesh.min_shard_size)
        self.train_step = jax.jit(
            make_train_step(parts.train_graphdef, parts.rest, tx, config, num_classes=len(self.class_names)),
            in_shardings=(self.state_shardings, self.data_sharding),
            out_shardings=(self.state_shardings, replicated(self.mesh)), donate_argnums=0)
        self.eval_step = jax.jit(make_eval_step(parts.eval_graphdef, parts.rest, tuple(config.eval.views)))
        self.manager = checkpointing.checkpoint_manager(self.workdir, keep=config.checkpoint.keep,
                                                        every_steps=config.checkpoint.every_steps)

    # Evaluation and export ---------------------------------------------------------------
    def evaluate(self, split: str) -> dict:
        return evaluate_split(self.eval_step, self.state, self.config.data, split, self.class_names,
                              batch_size=self.config.eval.batch_size, sharding=self.data_sharding)

    def export(self, name: str) -> Path:
        """Write the current weights as a model directory ``workdir/name`` (replacing it)."""
        from flax import nnx
        target = self.workdir / name
        if self.is_main and target.exists():
            shutil.rmtree(target)
        multihost_utils.sync_global_devices(f"export {name}")
        model = nnx.merge(self.parts.eval_graphdef, self.state["trainable"], self.state["frozen"], self.parts.rest)
        metadata = dict(class_names=self.class_names, data=self.config.data.to_dict(),
                        step=int(self.state["step"]), source="training")
        return model_io.save_model(target, model, self.model_cfg, kind="classifier", metadata=metadata)

    # The loop --------------------------------------------------------------------------------
    def run(self) -> dict:
        config = self.config
        extra = {"history": [], "best": None}
        start_step = 0
        restored = checkpointing.restore_latest(
            self.manager, checkpointing.abstract_like(self.state, self.state_shardings))
        if restored:
            start_step, self.state, extra = restored
            log.info("resumed from step %d", start_step)
        if start_step >= self.total_steps and (self.workdir / "results.json").exists():
            return json.loads((self.workdir / "results.json").read_text())

        writer = MetricWriter(self.workdir)
        batches = pipeline.make_train_iterator(config.data, global_batch_size=config.batch_size,
                                               sharding=self.data_sharding, start_step=start_step)
        bar = tqdm(total=self.total_steps, initial=start_step, disable=not self.is_main,
                   desc=f"train {config.data.strategy}", unit="step", dynamic_ncols=True)
        last_time, last_step = time.perf_counter(), start_step
        try:
            with checkpointing.PreemptionWatcher() as watcher:
                for step in range(start_step, self.total_steps):
                    self.state, metrics = self.train_step(self.state, next(batches))
                    loss, grad_norm = float(metrics["loss"]), float(metrics["grad_norm"])
                    if not (math.isfinite(loss) and math.isfinite(grad_norm)):
                        raise NonFiniteError(f"training stopped at step {step + 1}: loss={loss}, "
                                             f"grad_norm={grad_norm} (lower the learning rate, check "
                                             f"the data, or enable grad_clip_norm)")
                    done = step + 1
                    bar.update(1)
                    if done % config.log_every_steps == 0 or done == self.total_steps:
                        now = time.perf_counter()
                        clips_per_s = (done - last_step) * config.batch_size / max(now - last_time, 1e-9)
                        last_time, last_step = now, done
                        lr = float(self.schedule(done // config.optim.grad_accum_steps))
                        writer.write(done, dict(loss=loss, grad_norm=grad_norm, lr=lr, clips_per_s=clips_per_s,
                                                accuracy=float(metrics["accuracy"])), "train")
                        bar.set_postfix(loss=f"{loss:.4f}", clips_s=f"{clips_per_s:.1f}")
                    if done % self.steps_per_epoch == 0 or done == self.total_steps:
                        self._end_of_epoch(done, extra, writer)
                        checkpointing.save(self.manager, done, self.state, extra, force=True)
                    else:
                        checkpointing.save(self.manager, done, self.state, extra)
                    if watcher.requested():
                        checkpointing.save(self.manager, done, self.state, extra, force=True)
                        self.manager.wait_until_finished()
                        log.warning("SIGTERM: saved step %d and stopped; run the same command to resume", done)
                        return {"status": "preempted", "step": done}
        finally:
            bar.close()
            writer.close()
            self.manager.wait_until_finished()
        return self._finish(extra)

    def _end_of_epoch(self, step: int, extra: dict, writer: MetricWriter) -> None:
        epoch = math.ceil(step / self.steps_per_epoch)
        last = step == self.total_steps
        if self.dataset.num_examples("validation") == 0 or not (last or epoch % self.config.eval.every_epochs == 0):
            return
        val = self.evaluate("validation")
        writer.write(step, dict(war=val["war"], uar=val["uar"], epoch=epoch), "validation")
        extra["history"].append(dict(step=step, epoch=epoch, war=val["war"], uar=val["uar"]))
        best = extra["best"]
        if best is None or (val["uar"], val["war"]) > (best["validation"]["uar"], best["validation"]["war"]):
            test = self.evaluate("test")
            extra["best"] = dict(step=step, epoch=epoch, validation=_report_summary(val),
                                 test=_report_summary(test), test_confusion_matrix=test["confusion_matrix"])
            self.export("best_model")

    def _finish(self, extra: dict) -> dict:
        test = self.evaluate("test")
        self.export("final_model")
        results = {
            "strategy": self.config.data.strategy,
            "dataset": self.config.data.dataset,
            "protocol": self.config.data.protocol,
            "fold": self.config.data.fold,
            "steps": self.total_steps,
            "class_names": self.class_names,
            "test": _report_summary(test) | {"confusion_matrix": test["confusion_matrix"]},
            "test_at_best_validation": extra["best"],
            "validation_history": extra["history"],
            "config": json.loads(self.config.to_json_best_effort()),
        }
        if self.is_main:
            (self.workdir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
            plot_confusion(test["confusion_matrix"], self.class_names, self.workdir / "confusion_test.png",
                           f"test, last epoch: WAR {test['war']:.1f}%, UAR {test['uar']:.1f}%")
            plot_training_curves(read_metrics(self.workdir), self.workdir / "training_curves.png")
        return results


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Train (resuming from ``workdir`` when it holds checkpoints), evaluate, write results."""
    return Trainer(config, workdir).run()
