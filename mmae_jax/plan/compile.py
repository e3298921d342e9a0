"""Compile the step a run would run, for a target's devices, ahead of time.

The step comes from the training assembly (``mmae_jax.train.assembly.assemble``), the one that
``train``, ``pretrain`` and ``evaluate`` build: same model, optimiser, mesh rules, shardings,
dtype, remat, attention, global batch and donation. Only the batch size (per chip x chips),
the number of slices and, for a batch search, the remat policy are set here.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import ml_collections

from mmae_jax.errors import ConfigError
from mmae_jax.plan.memory import out_of_memory

# ``--task`` -> the config.task it compiles.
TASKS = {"train": "classification", "eval": "classification", "pretrain": "pretraining"}
# The schedule's length does not change a shape; the assembly needs one.
STEPS_PER_EPOCH = 100


@dataclasses.dataclass
class CompiledStep:
    """One compiled step and what it was compiled from."""

    compiled: Any
    assembly: Any
    config: ml_collections.ConfigDict
    seconds: float                 # lowering + compiling, on this machine


def default_task(config: ml_collections.ConfigDict) -> str:
    """``train`` for a classification config, ``pretrain`` for a pre-training one."""
    return "pretrain" if config.task == "pretraining" else "train"


def step_config(config: ml_collections.ConfigDict, task: str, chips: int, slices: int, per_chip_batch: int,
                remat_policy: str | None = None) -> ml_collections.ConfigDict:
    """A copy of ``config`` with the global batch of ``per_chip_batch`` clips per chip (the train
    and the evaluation batch), ``slices`` mesh slices and the remat policy."""
    if TASKS[task] != config.task:
        raise ConfigError(f"--task {task} compiles a {TASKS[task]} config, but this config has task={config.task}",
                          f"use --task {default_task(config)}, or a {TASKS[task]} config")
    if per_chip_batch < 1:
        raise ConfigError(f"--per-chip-batch {per_chip_batch} is not a positive number", "give 1 or more, or auto")
    config = config.copy_and_resolve_references()
    with config.unlocked():
        # The batch of both steps: a run on the target evaluates at the batch it trains at.
        config.batch_size = config.eval.batch_size = per_chip_batch * chips
        config.mesh.slices = slices
        if remat_policy is not None:
            config.model.remat_policy = remat_policy
    return config


def num_classes(config: ml_collections.ConfigDict) -> int:
    """The number of classes of the config's dataset and build (its class set), read from the builder."""
    from mmae_jax.data_prep import protocols, registry

    builder = registry.builder_class(config.data.dataset)
    class_set = "default"
    for builder_config in builder.BUILDER_CONFIGS:
        if builder_config.name == (config.data.builder_config or builder.BUILDER_CONFIGS[0].name):
            class_set = getattr(builder_config, "class_set", "default")
    return len(protocols.class_names(config.data.dataset, class_set))


def compile_step(config: ml_collections.ConfigDict, devices: list, task: str) -> CompiledStep:
    """Assemble and compile ``task``'s step of ``config`` for ``devices``.

    Raises ``memory.OutOfMemory`` when the compiler finds the step too big for a chip (TPU).
    """
    import jax

    from mmae_jax.config.validate import validate_devices, validate_spec
    from mmae_jax.train.assembly import assemble

    # The run spec as `train` validates it, with the target's device count.
    validate_spec(config, command="plan")
    validate_devices(config, len(devices))
    started = time.perf_counter()
    assembly = assemble(config, devices, num_classes=num_classes(config), steps_per_epoch=STEPS_PER_EPOCH)
    if task == "eval":
        step, inputs = assembly.eval_step, assembly.abstract_eval_input
    else:
        step, inputs = assembly.train_step, (assembly.abstract_state, assembly.abstract_batch)
    try:
        compiled = step.lower(*inputs).compile()
    except jax.errors.JaxRuntimeError as error:
        oom = out_of_memory(str(error), "a smaller --per-chip-batch, --config.model.remat_policy=full, "
                                        "or more fsdp (--config.mesh.fsdp)")
        if oom is None:
            raise
        raise oom from error
    return CompiledStep(compiled, assembly, config, time.perf_counter() - started)

