"""The step a run compiles, assembled from the config and a device list alone.

``assemble(config, devices, num_classes=K, steps_per_epoch=S)`` builds, without a dataset, a
workdir or real parameters: the mesh over ``devices``, the model config (its attention kernel
resolved for the devices' platform, never the host's), the abstract train state and its
shardings, the optimiser, and the jitted train and evaluation steps with their shardings and
donation. ``Trainer`` (loop.py), ``evaluate_workdir``, training parity and ``mmae-jax plan``
all take their step from here, so the step that ``plan`` compiles for a TPU pod on a CPU host
is the one that ``train`` runs there.

``export_train_step(asm, platforms)`` exports ``asm.train_step`` for its abstract state and
batch as a ``jax.export`` artifact; ``Exported.serialize()`` then gives bytes that
``jax.export.deserialize`` turns back into a callable step on any of ``platforms``. The train
state is string-keyed (``steps.string_keys``); the optimiser's state classes (optax named
tuples) are registered for serialisation here.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator, Sequence

import jax
import jax.numpy as jnp
import ml_collections
from jax import export

from mmae_jax.config.validate import validate_devices
from mmae_jax.model.attention import resolve_attention_impl
from mmae_jax.model.config import VideoMAEConfig
from mmae_jax.model.io import non_param_state
from mmae_jax.train.mesh import batch_sharding, create_mesh, replicated, traced_on
from mmae_jax.train.optimizer import make_optimizer
from mmae_jax.train.steps import (ModelParts, abstract_model_parts, make_eval_step, make_train_step, model_config,
                                  string_keys, train_state_shardings)
from mmae_jax.train.tasks import TaskSpec, task_spec


@dataclasses.dataclass
class Assembly:
    """One run's step, shardings and abstract state (see the module docstring)."""

    config: ml_collections.ConfigDict
    spec: TaskSpec
    mesh: Any
    model_cfg: VideoMAEConfig        # as configured: saved with the models the run writes
    built_cfg: VideoMAEConfig        # the model the step runs: attention resolved for the devices
    trainable_filter: Any
    abstract: ModelParts             # graph definitions and ShapeDtypeStruct parameters
    rest: dict                       # the model's non-parameter state (dropout streams), host constants
    tx: Any
    schedule: Any
    steps_per_epoch: int
    total_steps: int
    abstract_state: dict             # ShapeDtypeStructs with shardings
    state_shardings: dict
    data_sharding: Any
    train_step: Any                  # jitted ``(state, batch) -> (state, metrics)``, state donated
    eval_step: Any                   # jitted ``(params, video) -> probabilities``; None for pre-training

    @property
    def global_batch_size(self) -> int:
        return self.config.batch_size

    @property
    def attention(self) -> str:
        return self.built_cfg.attention_impl

    @property
    def param_shardings(self) -> dict:
        return {"trainable": self.state_shardings["trainable"], "frozen": self.state_shardings["frozen"]}

    @property
    def abstract_batch(self) -> dict:
        """The train batch: ``video`` uint8 ``[B, T, S, S, 3]``, ``label`` int32 ``[B]``, split over the mesh."""
        return batch_shapes(self.config, self.config.batch_size, self.data_sharding)

    @property
    def abstract_eval_input(self) -> tuple[dict, jax.ShapeDtypeStruct]:
        """``(params, video)`` of the evaluation step, for ``eval.batch_size`` clips."""
        video = batch_shapes(self.config, self.config.eval.batch_size, self.data_sharding)["video"]
        return {"trainable": self.abstract_state["trainable"], "frozen": self.abstract_state["frozen"]}, video


def batch_shapes(config: ml_collections.ConfigDict, batch_size: int, sharding) -> dict:
    data = config.data
    video = (batch_size, data.num_frames, data.image_size, data.image_size, 3)
    return {"video": jax.ShapeDtypeStruct(video, jnp.uint8, sharding=sharding),
            "label": jax.ShapeDtypeStruct((batch_size,), jnp.int32, sharding=sharding)}


def assemble(config: ml_collections.ConfigDict, devices: Sequence | None = None, *, num_classes: int,
             steps_per_epoch: int, model_cfg: VideoMAEConfig | None = None,
             model_space_inputs: bool = False) -> Assembly:
    """The step of ``config`` on ``devices`` (default: JAX's devices) for ``num_classes`` classes and
    ``steps_per_epoch`` steps per epoch (the schedule's length; shapes do not depend on it).
    The task's parameters and loss come from ``config.task``'s entry of ``tasks.TASKS``. For parity checks:
    ``model_cfg`` replaces the config's model (a converted checkpoint's), ``model_space_inputs``
    feeds the batches' ``video`` to the model as it is (already normalised floats)."""
    spec = task_spec(config)
    devices = list(jax.devices() if devices is None else devices)
    validate_devices(config, len(devices))     # the run spec's one check of mesh and batches
    mesh = create_mesh(config.mesh.data, config.mesh.fsdp, config.mesh.get("slices", 1), devices)
    model_cfg = model_cfg or model_config(config, num_classes)
    normalization = None if model_space_inputs else config.data.normalization
    built_cfg = model_cfg.replace(attention_impl=resolve_attention_impl(model_cfg.attention_impl, devices[0].platform))
    trainable_filter = spec.trainable_filter(built_cfg)
    abstract = abstract_model_parts(spec.model_class, built_cfg, trainable_filter)

    total_steps = config.num_epochs * steps_per_epoch
    if config.max_steps > 0:
        total_steps = min(total_steps, config.max_steps)
    accum = config.optim.grad_accum_steps
    tx, schedule = make_optimizer(config.optim, abstract.trainable, depth=built_cfg.depth,
                                  total_updates=max(total_steps // accum, 1),
                                  updates_per_epoch=max(steps_per_epoch // accum, 1),
                                  batch_size=config.batch_size * accum)
    abstract_state, state_shardings = train_state_shardings(abstract, tx, mesh, config.mesh.min_shard_bytes)
    data_sharding = batch_sharding(mesh)
    # The dropout streams are reseeded every step (steps.py) and unused in eval mode: constants.
    rest = string_keys(non_param_state(built_cfg, spec.kind).to_pure_dict())
    step = make_train_step(abstract.train_graphdef, rest, tx, config.seed,
                           spec.loss(config, built_cfg), normalization=normalization)
    train_step = jax.jit(traced_on(mesh, step), in_shardings=(state_shardings, data_sharding),
                         out_shardings=(state_shardings, replicated(mesh)), donate_argnums=0)
    eval_step = None
    if spec.kind == "classifier":
        params = {"trainable": state_shardings["trainable"], "frozen": state_shardings["frozen"]}
        eval_step = jax.jit(traced_on(mesh, make_eval_step(abstract.eval_graphdef, rest,
                                                           tuple(config.eval.views),
                                                           normalization=normalization)),
                            in_shardings=(params, data_sharding), out_shardings=data_sharding)
    return Assembly(config=config, spec=spec, mesh=mesh, model_cfg=model_cfg, built_cfg=built_cfg,
                    trainable_filter=trainable_filter, abstract=abstract, rest=rest, tx=tx, schedule=schedule,
                    steps_per_epoch=steps_per_epoch, total_steps=total_steps, abstract_state=abstract_state,
                    state_shardings=state_shardings, data_sharding=data_sharding, train_step=train_step,
                    eval_step=eval_step)


_REGISTERED: set[type] = set()


def _node_types(treedef) -> Iterator[type]:
    data = treedef.node_data()
    if data is not None:
        yield data[0]
    for child in treedef.children():
        yield from _node_types(child)


def register_state_types(tree) -> None:
    """Register every named-tuple node type of ``tree`` with ``jax.export``'s serialisation."""
    for node_type in set(_node_types(jax.tree_util.tree_structure(tree))):
        if node_type in _REGISTERED or not hasattr(node_type, "_fields"):
            continue
        export.register_namedtuple_serialization(
            node_type, serialized_name=f"{node_type.__module__}.{node_type.__qualname__}")
        _REGISTERED.add(node_type)


def export_train_step(asm: Assembly, platforms: Sequence[str] = ("cpu", "cuda", "tpu")) -> export.Exported:
    """``asm.train_step`` exported for ``platforms``."""
    register_state_types(asm.abstract_state)
    return export.export(asm.train_step, platforms=tuple(platforms))(asm.abstract_state, asm.abstract_batch)
