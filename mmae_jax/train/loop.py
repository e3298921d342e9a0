"""The one train loop, shared by fine-tuning and MAE pre-training.

``Trainer`` owns what every run needs: mesh, stored dataset, model parts created sharded,
optimiser, the jitted step with donated state, orbax checkpoints, SIGTERM handling, NaN
checks and logs. A *task* says what is trained and what happens at epoch ends:
``ClassificationTask`` (mmae_jax/train/classification.py) and ``PretrainingTask``
(mmae_jax/train/pretraining.py).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Protocol

import jax
import ml_collections
from flax import nnx
from jax.experimental import multihost_utils
from tqdm import tqdm

from mmae_jax.data import pipeline
from mmae_jax.data.source import open_dataset
from mmae_jax.model import io as model_io
from mmae_jax.model.config import VideoMAEConfig
from mmae_jax.train import checkpointing
from mmae_jax.train import workdir as workdir_guard
from mmae_jax.train.devices import accelerator_warning, runtime_summary
from mmae_jax.train.logs import MetricWriter, drop_rows_after
from mmae_jax.train.mesh import batch_sharding, create_mesh, replicated
from mmae_jax.train.optimizer import make_optimizer
from mmae_jax.train.provenance import provenance
from mmae_jax.train.state import create_train_state, init_model_parts, model_config
from mmae_jax.train.step_metrics import MetricWindow, NonFiniteError  # noqa: F401  (raised by run)
from mmae_jax.train.steps import TaskLoss, make_train_step
from mmae_jax.train.validate import validate_experiment

log = logging.getLogger(__name__)


class Task(Protocol):
    """What a run trains; see ClassificationTask and PretrainingTask."""

    kind: str                               # model directory kind: "classifier" | "pretrainer"
    model_class: type[nnx.Module]

    def trainable_filter(self, cfg: VideoMAEConfig): ...
    def loss(self, trainer: "Trainer") -> TaskLoss: ...
    def end_of_epoch(self, trainer: "Trainer", step: int, extra: dict, writer: MetricWriter) -> None: ...
    def finish(self, trainer: "Trainer", extra: dict) -> dict: ...


class Trainer:
    """Everything one run needs: mesh, data, model parts, optimiser, jitted step, checkpoints."""

    def __init__(self, config: ml_collections.ConfigDict, workdir: str | Path, task: Task):
        validate_experiment(config)
        self.config = config
        self.task = task
        self.workdir = Path(workdir).absolute()
        self.is_main = jax.process_index() == 0
        if self.is_main:
            self.workdir.mkdir(parents=True, exist_ok=True)
            for change in workdir_guard.check_saved_config(self.workdir, config):
                log.warning("resuming %s with a changed setting: %s", self.workdir, change)
        self.mesh = create_mesh(config.mesh.data, config.mesh.fsdp)
        if config.batch_size % self.mesh.size:
            raise ValueError(f"batch_size {config.batch_size} is not divisible by the {self.mesh.size} devices")
        self.data_sharding = batch_sharding(self.mesh)
        # A task may read its own data (pre-training: a corpus of stored datasets, see data/corpus.py).
        self.dataset = task.open_data(config) if hasattr(task, "open_data") else open_dataset(config.data)
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

        parts, param_shardings = init_model_parts(
            task.model_class, self.model_cfg, task.trainable_filter(self.model_cfg), config.seed, self.mesh,
            config.mesh.min_shard_size, config.init, config.init_allow_partial)
        self.parts = parts
        if parts.init_report is not None and self.is_main:
            print(workdir_guard.write_init_report(self.workdir, config.init, parts.init_report))
        tx, self.schedule = make_optimizer(
            config.optim, parts.trainable, depth=self.model_cfg.depth,
            total_updates=max(self.total_steps // accum, 1),
            updates_per_epoch=max(self.steps_per_epoch // accum, 1), batch_size=config.batch_size * accum)
        self.state, self.state_shardings = create_train_state(parts, param_shardings, tx, self.mesh,
                                                              config.mesh.min_shard_size)
        self.train_step = jax.jit(
            make_train_step(parts.train_graphdef, parts.rest, tx, config.seed, task.loss(self),
                            normalization=config.data.normalization),
            in_shardings=(self.state_shardings, self.data_sharding),
            out_shardings=(self.state_shardings, replicated(self.mesh)), donate_argnums=0)
        self.manager = checkpointing.checkpoint_manager(self.workdir, keep=config.checkpoint.keep,
                                                        every_steps=config.checkpoint.every_steps)

    def model(self) -> nnx.Module:
        """The current weights as an eval-mode model (for pictures and exports)."""
        return nnx.merge(self.parts.eval_graphdef, self.state["trainable"], self.state["frozen"], self.parts.rest)

    def export(self, name: str) -> Path:
        """Write the current weights as a model directory ``workdir/name`` (replacing it)."""
        target = self.workdir / name
        if self.is_main and target.exists():
            shutil.rmtree(target)
        multihost_utils.sync_global_devices(f"export {name}")
        metadata = dict(class_names=self.class_names, data=self.config.data.to_dict(),
                        step=int(self.state["step"]), source="training")
        return model_io.save_model(target, self.model(), self.model_cfg, kind=self.task.kind, metadata=metadata)

    def restore(self) -> tuple[int, dict]:
        """Load the latest checkpoint if there is one: ``(step, extra)``, else ``(0, {})``."""
        restored = checkpointing.restore_latest(
            self.manager, checkpointing.abstract_like(self.state, self.state_shardings))
        if restored is None:
            return 0, {}
        step, self.state, extra = restored
        log.info("resumed from step %d", step)
        return step, extra

    def run(self) -> dict:
        started = time.perf_counter()
        config = self.config
        start_step, extra = self.restore()
        extra = extra or {"history": [], "best": None}
        if self.is_main:
            drop_rows_after(self.workdir, start_step)
        if start_step >= self.total_steps and (self.workdir / "results.json").exists():
            return json.loads((self.workdir / "results.json").read_text())

        writer = MetricWriter(self.workdir)
        batches = (self.task.train_batches(self, start_step) if hasattr(self.task, "train_batches") else
                   pipeline.make_train_iterator(config.data, global_batch_size=config.batch_size,
                                                sharding=self.data_sharding, start_step=start_step))
        bar = tqdm(total=self.total_steps, initial=start_step, disable=not self.is_main,
                   desc=f"{self.task.kind} {config.data.strategy}", unit="step", dynamic_ncols=True)
        if self.is_main:
            tqdm.write(runtime_summary(self.mesh, config.batch_size))
        if warning := accelerator_warning():
            log.warning(warning)
        last_time, last_step = time.perf_counter(), start_step
        window = MetricWindow()
        try:
            with checkpointing.PreemptionWatcher() as watcher:
                for step in range(start_step, self.total_steps):
                    # No host sync here: the step's metrics stay on the device (``window``)
                    # until a log, a checkpoint or a preemption check needs them.
                    self.state, metrics = self.train_step(self.state, next(batches))
                    done = step + 1
                    window.add(done, metrics)
                    bar.update(1)
                    log_now = done % config.log_every_steps == 0 or done == self.total_steps
                    epoch_end = done % self.steps_per_epoch == 0 or done == self.total_steps
                    # Across hosts the SIGTERM flag costs an all-gather: asked at logging steps.
                    preempted = (log_now or jax.process_count() == 1) and watcher.requested()
                    if log_now or epoch_end or preempted or self.manager.should_save(done):
                        window.check()      # never log or save past a NaN/Inf step
                    if log_now:
                        now = time.perf_counter()
                        clips_per_s = (done - last_step) * config.batch_size / max(now - last_time, 1e-9)
                        last_time, last_step = now, done
                        lr = float(self.schedule(done // config.optim.grad_accum_steps))
                        means = window.means()
                        writer.write(done, dict(means, lr=lr, clips_per_s=clips_per_s), "train")
                        bar.set_postfix(loss=f"{means['loss']:.4f}", clips_s=f"{clips_per_s:.1f}")
                    if epoch_end:
                        self.task.end_of_epoch(self, done, extra, writer)
                        checkpointing.save(self.manager, done, self.state, extra, force=True)
                    else:
                        checkpointing.save(self.manager, done, self.state, extra)
                    if preempted:
                        checkpointing.save(self.manager, done, self.state, extra, force=True)
                        self.manager.wait_until_finished()
                        log.warning("SIGTERM: saved step %d and stopped; run the same command to resume", done)
                        return {"status": "preempted", "step": done}
        finally:
            bar.close()
            writer.close()
            self.manager.wait_until_finished()
        results = self.task.finish(self, extra)
        results["provenance"] = dict(provenance(self.dataset.builder.data_dir, time.perf_counter() - started),
                                     resumed_from_step=start_step)
        if self.is_main:
            (self.workdir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        return results

    def should_evaluate(self, step: int) -> bool:
        """At the last step, and at the end of every ``eval.every_epochs``-th epoch."""
        epoch = math.ceil(step / self.steps_per_epoch)
        return step == self.total_steps or epoch % self.config.eval.every_epochs == 0

    def run_summary(self) -> dict:
        """The fields every results.json starts with."""
        return {"strategy": self.config.data.strategy, "dataset": self.config.data.dataset,
                "protocol": self.config.data.protocol, "fold": self.config.data.fold,
                "steps": self.total_steps, "config": json.loads(self.config.to_json_best_effort())}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """Fine-tune (or linear-probe) a classifier, resuming from ``workdir`` when it holds checkpoints."""
    from mmae_jax.train.classification import ClassificationTask
    return run_task(config, workdir, ClassificationTask())


def pretrain(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """MAE pre-training on fused sequences (labels unused), resuming like ``train_and_evaluate``."""
    from mmae_jax.train.pretraining import PretrainingTask
    return run_task(config, workdir, PretrainingTask())


def run_task(config: ml_collections.ConfigDict, workdir: str | Path, task: Task) -> dict:
    """``Trainer(config, workdir, task).run()`` holding the workdir's lock (one run at a time).

    Returns the results, or ``{"status": "preempted", "step": ...}`` after a SIGTERM.
    """
    validate_experiment(config)        # before the lock creates the workdir
    with workdir_guard.WorkdirLock(workdir, active=jax.process_index() == 0):
        return Trainer(config, workdir, task).run()
