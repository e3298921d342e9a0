"""The training tasks by name, and what the train loop and a task know of each other.

``config.task`` names the task; ``TASKS`` says, for each, the kind of model it trains and
exports (a key of ``MODEL_KINDS``, mmae_jax/model/kinds.py, which gives the model class) and
the command that runs it (both from mmae_jax/config/choices.py, which the run spec is
validated against), and what its train step optimises: the parameters (``trainable_filter``)
and the loss, built from the config alone (``mmae-jax plan`` compiles the step without data).
The implementations are ``TASK_CLASSES`` of mmae_jax/train/loop.py.

The loop (mmae_jax/train/loop.py) owns the train state. A task sees
- a ``RunContext``: what it may read (config, workdir, dataset, model config, evaluation
  graph, data sharding, step counts) and call (``export``, ``run_summary``);
- the current parameters, passed in as ``Params`` (``{"trainable": ..., "frozen": ...}``);
- its own ``TaskState``: a dataclass of JSON values that the loop checkpoints with the train
  state and hands back on resumption.

To add a task: a class with the methods of ``Task``, its ``TaskState`` subclass, its names in
``config.choices`` (``TASK_MODEL_KINDS``, ``TASK_COMMANDS``), its step parts in ``STEP_PARTS`` and its
class in ``loop.TASK_CLASSES``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol, TypeVar

import ml_collections
from flax import nnx

from mmae_jax.config.choices import TASK_COMMANDS, TASK_MODEL_KINDS
from mmae_jax.config.validate import check_command
from mmae_jax.model.config import VideoMAEConfig
from mmae_jax.model.encoder import trainable_filter as encoder_trainable_filter
from mmae_jax.model.kinds import model_class
from mmae_jax.train.steps import classification_loss, reconstruction_loss

if TYPE_CHECKING:
    from mmae_jax.train.logs import MetricWriter
    from mmae_jax.train.steps import TaskLoss

Params = dict   # {"trainable": pure dict, "frozen": pure dict}: the parameters the steps merge


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One entry of ``TASKS``."""

    kind: str                          # the model it trains and exports (mmae_jax/model/kinds.py)
    command: str                       # the ``mmae-jax`` command that runs it
    trainable_filter: Callable[[VideoMAEConfig], Any]   # model config -> nnx filter of what the optimiser updates
    loss: Callable[[ml_collections.ConfigDict, VideoMAEConfig], "TaskLoss"]   # (config, model config) -> the loss

    @property
    def model_class(self) -> type[nnx.Module]:
        """The class of the model it trains."""
        return model_class(self.kind)


STEP_PARTS = {
    "classification": (encoder_trainable_filter,
                       lambda config, model_cfg: classification_loss(config.optim, model_cfg.num_classes)),
    "pretraining": (lambda model_cfg: nnx.Param, lambda config, model_cfg: reconstruction_loss()),
}
TASKS: dict[str, TaskSpec] = {name: TaskSpec(TASK_MODEL_KINDS[name], command, *STEP_PARTS[name])
                              for name, command in TASK_COMMANDS.items()}


def task_spec(config: ml_collections.ConfigDict) -> TaskSpec:
    """The entry of ``config.task``; ConfigError for a name not in ``TASKS``."""
    check_command(config)
    return TASKS[config.task]


@dataclasses.dataclass
class TaskState:
    """Base of a task's own state: JSON values, checkpointed with the train state."""

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, record: dict | None):
        """The state saved by ``to_json`` (fields it lacks take their defaults)."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in (record or {}).items() if key in names})


S = TypeVar("S", bound=TaskState)


class StoredData(Protocol):
    """What a task's data offers the loop (a stored dataset or a pre-training corpus)."""

    class_names: list[str]

    def num_examples(self, split: str) -> int: ...


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What a task may read and call during a run (made by the Trainer)."""

    config: ml_collections.ConfigDict
    workdir: Path
    is_main: bool                          # process 0: the one that writes files
    dataset: StoredData
    model_cfg: VideoMAEConfig
    eval_graphdef: nnx.GraphDef            # the model in eval mode, to merge with Params
    rest: dict                             # the model's non-parameter state
    mesh: Any                              # the device mesh of the run
    data_sharding: Any                     # of global batches
    eval_step: Any                         # jitted ``(params, video) -> probabilities`` (classifiers)
    steps_per_epoch: int
    total_steps: int
    export: Callable[[str, Params], Path]  # write Params as the model directory workdir/<name>

    @property
    def class_names(self) -> list[str]:
        return self.dataset.class_names

    def epoch(self, step: int) -> int:
        return math.ceil(step / self.steps_per_epoch)

    def run_summary(self) -> dict:
        """The fields every results.json starts with."""
        data = self.config.data
        return {"task": self.config.task, "strategy": data.strategy, "dataset": data.dataset,
                "protocol": data.protocol, "fold": data.fold, "steps": self.total_steps,
                "config": json.loads(self.config.to_json_best_effort())}


class Task(Protocol[S]):
    """What a run trains and what it does at evaluation epochs and at the end."""

    state_class: type[S]

    def open_data(self, config: ml_collections.ConfigDict) -> StoredData:
        """The data the run reads (class names, split sizes)."""

    def train_batches(self, context: RunContext, start_step: int) -> Iterator[dict]:
        """Global train batches from ``start_step`` on (the same as an uninterrupted run's)."""

    def at_evaluation(self, context: RunContext, step: int, params: Params, state: S,
                      writer: "MetricWriter") -> S:
        """At the end of an evaluation epoch (``eval.every_epochs``, and the last step)."""

    def finish(self, context: RunContext, params: Params, state: S) -> dict:
        """After the last step: export, write plots, return the results."""
