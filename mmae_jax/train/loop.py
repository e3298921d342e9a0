"""The one train loop, shared by fine-tuning and MAE pre-training.

``Trainer`` owns what every run needs: the run context, the assembled step (mesh, optimiser,
the jitted step with donated state: assembly.py), the train state created sharded, orbax
checkpoints, SIGTERM handling, NaN checks and logs; ``itstime`` says at each step what is due.
The *task* named by ``config.task`` (mmae_jax/train/tasks.py) says what is trained, from
which data, and what happens at evaluation epochs and at the end: ``ClassificationTask``
(mmae_jax/train/classification.py) and ``PretrainingTask`` (mmae_jax/train/pretraining.py).
A task sees a ``RunContext``, the parameters and its own checkpointed ``TaskState``, never
the Trainer.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import shutil
import time
from pathlib import Path

import jax
import ml_collections
from flax import nnx
from jax.experimental import multihost_utils

from mmae_jax.config.validate import check_command
from mmae_jax.model import io as model_io
from mmae_jax.train import checkpointing
from mmae_jax.train import workdir as workdir_guard
from mmae_jax.train.assembly import assemble
from mmae_jax.train.classification import ClassificationTask
from mmae_jax.train.logs import MetricWriter, Progress, drop_rows_after
from mmae_jax.train.mesh import accelerator_warning, replicated, runtime_summary
from mmae_jax.train.metrics import MetricWindow
from mmae_jax.train.optimizer import learning_rate_used
from mmae_jax.train.pretraining import PretrainingTask
from mmae_jax.train.provenance import provenance
from mmae_jax.train.steps import create_train_state, init_model_parts
from mmae_jax.train.tasks import Params, RunContext, Task, TaskState, task_spec
from mmae_jax.train.validate import init_path, validate_experiment

log = logging.getLogger(__name__)


def itstime(step: int, every: int, total_steps: int) -> bool:
    """Whether an action repeated every ``every`` steps is due after step ``step`` (counted from
    1) of ``total_steps``: at every multiple of ``every``, and at the last step."""
    return step == total_steps or (every > 0 and step % every == 0)


def _claim_workdir(workdir: Path, config: ml_collections.ConfigDict) -> list[str]:
    """Process 0: create ``workdir`` and match its saved config (``check_saved_config``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir_guard.check_saved_config(workdir, config)


# config.task -> the class that implements it (mmae_jax/train/tasks.py says what a task is).
TASK_CLASSES: dict[str, type[Task]] = {"classification": ClassificationTask, "pretraining": PretrainingTask}


class Trainer:
    """One run: its ``context`` (what the task sees), the ``assembly`` (the jitted step, its
    shardings and optimiser), the train ``state`` and the checkpoint ``manager``.

    ``config``: a run spec that ``validate_experiment`` has passed (``train_and_evaluate`` and the
    commands validate it); ``task``: an instance of ``config.task``'s implementation (default: a new one).
    """

    def __init__(self, config: ml_collections.ConfigDict, workdir: str | Path, task: Task | None = None):
        spec = task_spec(config)
        self.task = task if task is not None else TASK_CLASSES[config.task]()
        if not isinstance(self.task, TASK_CLASSES[config.task]):
            raise ValueError(f"{type(self.task).__name__} does not run config.task={config.task!r}")
        workdir = Path(workdir).absolute()
        is_main = jax.process_index() == 0
        changes = workdir_guard.shared_verdict(functools.partial(_claim_workdir, workdir, config) if is_main else None)
        for change in changes or []:
            log.warning("resuming %s with a changed setting: %s", workdir, change)
        dataset = self.task.open_data(config)
        train_size = dataset.num_examples("train")
        if train_size == 0:
            raise ValueError(f"the train split of {config.data.dataset} (protocol {config.data.protocol}, "
                             f"fold {config.data.fold}) is empty")
        self.assembly = asm = assemble(config, num_classes=len(dataset.class_names),
                                       steps_per_epoch=math.ceil(train_size / config.batch_size))
        parts = init_model_parts(
            spec.model_class, asm.built_cfg, asm.trainable_filter, config.seed,
            dict(asm.param_shardings, rest=jax.tree.map(lambda _: replicated(asm.mesh), asm.abstract.rest)),
            init_path(config.init), config.init_allow_partial)
        if parts.init_report is not None and is_main:
            print(workdir_guard.write_init_report(workdir, config.init, parts.init_report))
        self.state = create_train_state(parts, asm.state_shardings, asm.tx)
        self.context = RunContext(
            config=config, workdir=workdir, is_main=is_main, dataset=dataset, model_cfg=asm.built_cfg,
            eval_graphdef=parts.eval_graphdef, rest=asm.rest, mesh=asm.mesh, data_sharding=asm.data_sharding,
            eval_step=asm.eval_step, steps_per_epoch=asm.steps_per_epoch, total_steps=asm.total_steps,
            export=self.export)
        self.manager = checkpointing.checkpoint_manager(workdir, keep=config.checkpoint.keep,
                                                        every_steps=config.checkpoint.every_steps)

    @property
    def params(self) -> Params:
        """The current parameters, as the tasks and the eval steps take them."""
        return {"trainable": self.state["trainable"], "frozen": self.state["frozen"]}

    def export(self, name: str, params: Params) -> Path:
        """Write ``params`` as a model directory ``workdir/name`` (replacing it)."""
        context = self.context
        target = context.workdir / name
        if context.is_main and target.exists():
            shutil.rmtree(target)
        multihost_utils.sync_global_devices(f"export {name}")
        metadata = dict(class_names=context.class_names, data=context.config.data.to_dict(),
                        step=int(self.state["step"]), source="training")
        model = nnx.merge(context.eval_graphdef, params["trainable"], params["frozen"], context.rest)
        return model_io.save_model(target, model, self.assembly.model_cfg, kind=self.assembly.spec.kind,
                                   metadata=metadata)

    def restore(self) -> tuple[int, TaskState]:
        """Load the latest checkpoint if there is one: ``(step, task state)``, else ``(0, a new one)``."""
        restored = checkpointing.restore_latest(
            self.manager, checkpointing.abstract_like(self.state, self.assembly.state_shardings))
        if restored is None:
            return 0, self.task.state_class()
        step, self.state, task_state = restored
        log.info("resumed from step %d", step)
        return step, self.task.state_class.from_json(task_state)

    def run(self) -> dict:
        """Train from the latest checkpoint to ``total_steps``; every step ``itstime`` says what is
        due: a log line (``log_every_steps``: ``Progress``), the end of an epoch (a checkpoint), an evaluation
        (``eval.every_epochs``) and, across hosts at logging steps only (an all-gather), a look at
        SIGTERM. Checkpoints between epochs follow ``checkpoint.every_steps`` (orbax's interval)."""
        started = time.perf_counter()
        context, config, asm = self.context, self.context.config, self.assembly
        total, workdir = context.total_steps, context.workdir
        start_step, task_state = self.restore()
        if context.is_main:
            drop_rows_after(workdir, start_step)
        if start_step >= total and (workdir / "results.json").exists():
            return json.loads((workdir / "results.json").read_text())

        writer = MetricWriter(workdir)
        batches = self.task.train_batches(context, start_step)
        progress = Progress(total, start_step, f"{config.task} {config.data.strategy}", active=context.is_main)
        progress.write(runtime_summary(asm.mesh, config.batch_size))
        if warning := accelerator_warning():
            log.warning(warning)
        last_time, last_step = time.perf_counter(), start_step
        preemption_every = 1 if jax.process_count() == 1 else config.log_every_steps
        window = MetricWindow()
        try:
            with checkpointing.PreemptionWatcher() as watcher:
                for step in range(start_step, total):
                    # No host sync here: the step's metrics stay on the device (``window``)
                    # until a log, a checkpoint or a preemption check needs them.
                    self.state, metrics = asm.train_step(self.state, next(batches))
                    done = step + 1
                    window.add(done, metrics)
                    progress.update(1)
                    log_now = itstime(done, config.log_every_steps, total)
                    epoch_end = itstime(done, context.steps_per_epoch, total)
                    evaluate = itstime(done, context.steps_per_epoch * config.eval.every_epochs, total)
                    preempted = itstime(done, preemption_every, total) and watcher.requested()
                    if log_now or epoch_end or preempted or self.manager.should_save(done):
                        window.check()      # never log or save past a NaN/Inf step
                    if log_now:
                        now = time.perf_counter()
                        clips_per_s = (done - last_step) * config.batch_size / max(now - last_time, 1e-9)
                        last_time, last_step = now, done
                        lr = learning_rate_used(asm.schedule, done, config.optim.grad_accum_steps)
                        logged = dict(window.means(), lr=lr, clips_per_s=clips_per_s)
                        writer.write(done, logged, "train")
                        progress.log(done, logged)
                    if evaluate:
                        task_state = self.task.at_evaluation(context, done, self.params, task_state, writer)
                    saved = task_state.to_json()
                    checkpointing.save(self.manager, done, self.state, saved, force=epoch_end)
                    if preempted:
                        checkpointing.save(self.manager, done, self.state, saved, force=True)
                        self.manager.wait_until_finished()
                        log.info("%s: saved step %d and stopped", watcher.signal_name, done)
                        return {"status": "preempted", "step": done, "signal": watcher.signal_name}
        finally:
            progress.close()
            writer.close()
            self.manager.wait_until_finished()
        results = self.task.finish(context, self.params, task_state)
        results["provenance"] = dict(provenance(context.dataset.builder.data_dir, time.perf_counter() - started),
                                     resumed_from_step=start_step)
        if context.is_main:
            (workdir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        return results


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path, *, validate: bool = True) -> dict:
    """Run the task ``config.task`` names (classification: fine-tune or linear-probe a
    classifier; pretraining: MAE pre-training), resuming from ``workdir`` when it holds
    checkpoints, holding the workdir's lock (one run at a time).

    ``validate``: check the run spec first (``validate_experiment``, before the lock creates the
    workdir); False when the caller has (a command validates at its entry).
    Returns the results, or ``{"status": "preempted", "step": ..., "signal": "SIGTERM" | "SIGINT"}``
    after a SIGTERM or Ctrl-C.
    """
    if validate:
        validate_experiment(config)
    with workdir_guard.WorkdirLock(workdir, main=jax.process_index() == 0):
        return Trainer(config, workdir).run()


def pretrain(config: ml_collections.ConfigDict, workdir: str | Path) -> dict:
    """``train_and_evaluate`` of a pre-training config (ConfigError for another task)."""
    check_command(config, "pretrain")
    return train_and_evaluate(config, workdir)
