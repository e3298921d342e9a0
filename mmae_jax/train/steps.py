"""The model's train state, and the jitted train and eval steps over it.

The train state is a dict of pure pytrees: ``step`` (int32), ``trainable`` and ``frozen``
parameter dicts (``frozen`` is empty unless the backbone is frozen), and ``opt_state``. It is
built from an experiment config: the model config, the model split into its graph definitions
and parameter groups (``ModelParts``), created already sharded, and ``init`` loaded.

Random keys (dropout, mixup, masks) are derived from (seed, step), so a resumed run draws
the same randomness. What is optimised is a task's loss function:
``task_loss(model, batch, key) -> (loss, {name: scalar})``; it reads ``batch["video"]``
already converted to the model input.

Batches arrive as uint8 pixel values (``[B, T, S, S, 3]``); every step turns them into the
normalised float input with ``normalize.to_model_input``, once, on the device.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx

from mmae_jax.config.validate import check_views
from mmae_jax.data.normalize import to_model_input
from mmae_jax.errors import ConfigError
from mmae_jax.model.config import VideoMAEConfig
from mmae_jax.model.io import RestoreReport, load_matching
from mmae_jax.model.location import resolve_model_dir
from mmae_jax.model.paths import flat_params, map_named
from mmae_jax.train.mesh import replicated, tree_shardings
from mmae_jax.train.mixup import mix_batch, smooth_labels

TaskLoss = Callable[[nnx.Module, dict, jax.Array], tuple[jax.Array, dict]]


def model_config(config: ml_collections.ConfigDict, num_classes: int) -> VideoMAEConfig:
    """The model's config: the variant's sizes, the config's switches, the data's shape."""
    fields = dict(config.model.to_dict())
    variant = fields.pop("variant")
    return VideoMAEConfig.from_variant(
        variant, num_classes=num_classes, num_frames=config.data.num_frames,
        img_size=config.data.image_size, freeze_backbone=config.mode == "linear_probe", **fields)


@dataclasses.dataclass
class ModelParts:
    """The static halves of a model, and its parameters split for the optimiser."""

    train_graphdef: nnx.GraphDef
    eval_graphdef: nnx.GraphDef
    rest: dict                 # pure dict of the non-parameter state (dropout streams), replicated
    trainable: dict            # pure dict of the parameters the optimiser updates
    frozen: dict               # pure dict of the others (empty unless linear probe)
    init_report: RestoreReport | None = None   # what loading ``config.init`` did, when given


def string_keys(tree):
    """A pure dict with every key a string (NNX keys list items by int): the train state that
    checkpoints and ``jax.export`` serialise. ``nnx.merge`` takes it as it is."""
    return {str(key): string_keys(value) for key, value in tree.items()} if isinstance(tree, dict) else tree


def split_model(model: nnx.Module, trainable_filter) -> ModelParts:
    """Split into train/eval graph definitions and pure dicts of trainable, frozen and other state."""
    model.eval()
    eval_graphdef, *_ = nnx.split(model, trainable_filter, nnx.Param, ...)
    model.train()
    graphdef, trainable, frozen, rest = nnx.split(model, trainable_filter, nnx.Param, ...)
    return ModelParts(graphdef, eval_graphdef, *(string_keys(part.to_pure_dict()) for part in (rest, trainable, frozen)))


def abstract_model_parts(model_class: type[nnx.Module], cfg: VideoMAEConfig, trainable_filter) -> ModelParts:
    """The parts of ``model_class(cfg)`` with ``jax.ShapeDtypeStruct`` leaves (nothing allocated)."""
    return split_model(nnx.eval_shape(lambda: model_class(cfg, rngs=nnx.Rngs(0))), trainable_filter)


def part_shardings(abstract: ModelParts, mesh, min_shard_bytes: int) -> dict:
    """Shardings of ``trainable`` / ``frozen`` (the fsdp rule) and ``rest`` (replicated)."""
    return dict(trainable=tree_shardings(abstract.trainable, mesh, min_shard_bytes),
                frozen=tree_shardings(abstract.frozen, mesh, min_shard_bytes),
                rest=jax.tree.map(lambda _: replicated(mesh), abstract.rest))


def init_model_parts(model_class: type[nnx.Module], cfg: VideoMAEConfig, trainable_filter, seed: int,
                     shardings: dict, init: str = "", allow_partial: bool = False) -> ModelParts:
    """``model_class(cfg)`` created already sharded (jit with ``out_shardings``: ``part_shardings``),
    then ``init`` loaded.

    With ``init`` (a model directory from conversion, training or pre-training) every tensor
    whose path and shape match is copied in, and ``parts.init_report`` says what was loaded,
    left and unused. Raises ConfigError when an encoder tensor is left at its initial value
    (missing from ``init`` or of another shape), unless ``allow_partial``.
    """
    def make():
        parts = split_model(model_class(cfg, rngs=nnx.Rngs(params=seed, dropout=seed + 1)), trainable_filter)
        return dict(trainable=parts.trainable, frozen=parts.frozen, rest=parts.rest)

    abstract = abstract_model_parts(model_class, cfg, trainable_filter)
    values = jax.jit(make, out_shardings=shardings)()
    parts = ModelParts(abstract.train_graphdef, abstract.eval_graphdef, values["rest"],
                       values["trainable"], values["frozen"])
    if init:
        # Only the saved tensors that fit are read, placed like the parameters they replace.
        loaded, report = load_matching(resolve_model_dir(init), flat_params(parts.trainable) | flat_params(parts.frozen))
        check_backbone_loaded(report, init, allow_partial)
        parts.init_report = report
        parts.trainable, parts.frozen = (
            map_named(lambda name, value: loaded[name].astype(value.dtype) if name in loaded else value, tree)
            for tree in (parts.trainable, parts.frozen))
    return parts


BACKBONE_PREFIX = "encoder."


def check_backbone_loaded(report: RestoreReport, init: str | Path, allow_partial: bool) -> None:
    """ConfigError naming every encoder tensor ``init`` did not fill, unless ``allow_partial``.

    Heads and decoders may start fresh (a new number of classes, a classifier from a
    pretrainer); an encoder left partly random is a different experiment (in linear-probe
    mode, a head trained on a random frozen backbone).
    """
    missing = [path for path in report.left_at_init if path.startswith(BACKBONE_PREFIX)]
    mismatched = [f"{path} saved {list(saved)} model {list(model)}"
                  for path, saved, model in report.shape_mismatches if path.startswith(BACKBONE_PREFIX)]
    if (missing or mismatched) and not allow_partial:
        listed = "; ".join(mismatched + [f"{path} not in the checkpoint" for path in missing])
        raise ConfigError(f"init={init} fills {len(report.loaded)} tensors but leaves "
                          f"{len(missing) + len(mismatched)} encoder tensors at their random initial "
                          f"values: {listed}",
                          "use a checkpoint of the same variant, frames and image size, or set "
                          "--config.init_allow_partial=true to train from a partial load")


def train_state_shardings(abstract: ModelParts, tx, mesh, min_shard_bytes: int) -> tuple[dict, dict]:
    """``(abstract state, its shardings)``: step, optimiser state, trainable and frozen parameters."""
    params = part_shardings(abstract, mesh, min_shard_bytes)
    abstract_opt = jax.eval_shape(tx.init, abstract.trainable)
    shardings = dict(step=replicated(mesh), opt_state=tree_shardings(abstract_opt, mesh, min_shard_bytes),
                     trainable=params["trainable"], frozen=params["frozen"])
    shapes = dict(step=jax.ShapeDtypeStruct((), jnp.int32), opt_state=abstract_opt,
                  trainable=abstract.trainable, frozen=abstract.frozen)
    return jax.tree.map(lambda leaf, sharding: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding),
                        shapes, shardings), shardings


def create_train_state(parts: ModelParts, state_shardings: dict, tx) -> dict:
    """The train state of ``parts``: step 0, parameters and optimiser state, placed as ``state_shardings``."""
    opt_state = jax.jit(tx.init, out_shardings=state_shardings["opt_state"])(parts.trainable)
    return dict(step=jax.device_put(jnp.zeros((), jnp.int32), state_shardings["step"]),
                opt_state=opt_state, trainable=parts.trainable, frozen=parts.frozen)



def merge_model(graphdef, state, rest) -> nnx.Module:
    return nnx.merge(graphdef, state["trainable"], state["frozen"], rest)


def model_video(video: jax.Array, normalization: str | None) -> jax.Array:
    """The model input of a batch's ``video``: ``to_model_input`` of uint8 pixels, or the
    video itself when ``normalization`` is None (inputs made in model space, as in parity checks)."""
    return video if normalization is None else to_model_input(video, normalization)


def make_train_step(graphdef, rest, tx: optax.GradientTransformation, seed: int, task_loss: TaskLoss, *,
                    normalization: str | None):
    """``step(state, batch) -> (state, metrics)``.

    ``batch["video"]`` holds uint8 pixels normalised with ``normalization`` (see ``model_video``).
    Metrics: ``loss``, ``grad_norm``, the task's, and ``finite`` (1.0 when loss and gradient
    norm are finite), all scalars left on the device.
    """
    base_key = jax.random.key(seed)

    def train_step(state, batch):
        batch = dict(batch, video=model_video(batch["video"], normalization))
        task_key, dropout_key = jax.random.split(jax.random.fold_in(base_key, state["step"]))

        def loss_fn(trainable):
            model = merge_model(graphdef, {**state, "trainable": trainable}, rest)
            nnx.reseed(model, dropout=dropout_key)
            return task_loss(model, batch, task_key)

        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["trainable"])
        updates, opt_state = tx.update(grads, state["opt_state"], state["trainable"])
        new_state = dict(state, step=state["step"] + 1, opt_state=opt_state,
                         trainable=optax.apply_updates(state["trainable"], updates))
        grad_norm = optax.global_norm(grads)
        finite = (jnp.isfinite(loss) & jnp.isfinite(grad_norm)).astype(jnp.float32)
        return new_state, dict(loss=loss, grad_norm=grad_norm, finite=finite, **metrics)

    return train_step


def classification_loss(optim_cfg, num_classes: int) -> TaskLoss:
    """Cross-entropy on label-smoothed, mixup/cutmix-mixed targets; batch ``video``, ``label``.
    Its metric ``accuracy`` is a percentage."""

    def task_loss(model, batch, key):
        targets = smooth_labels(batch["label"], num_classes, optim_cfg.label_smoothing)
        video, targets = mix_batch(key, batch["video"], targets, mixup_alpha=optim_cfg.mixup_alpha,
                                   cutmix_alpha=optim_cfg.cutmix_alpha)
        logits = model(video)
        accuracy = 100.0 * jnp.mean(jnp.argmax(logits, -1) == batch["label"])
        return optax.softmax_cross_entropy(logits, targets).mean(), dict(accuracy=accuracy)

    return task_loss


def reconstruction_loss() -> TaskLoss:
    """The MAE loss of ``VideoMAEPretrainer.loss`` on a fresh tube mask drawn from ``key``."""

    def task_loss(model, batch, key):
        loss, _ = model.loss(batch["video"], key)
        return loss, {}

    return task_loss


def make_eval_step(graphdef, rest, views: tuple[str, ...] = ("identity",), *, normalization: str | None):
    """``eval_step(state, video) -> probabilities [B, K]`` averaged over test-time ``views``.

    ``video``: uint8 pixels ``[B, T, S, S, 3]`` (see ``model_video``). Views: ``identity`` and
    ``hflip`` (every fused frame mirrored left-right).
    """
    check_views(views)
    transforms = {"identity": lambda v: v, "hflip": lambda v: v[:, :, :, ::-1]}   # by choices.EVAL_VIEWS
    chosen = [transforms[view] for view in views]

    def eval_step(state, video):
        video = model_video(video, normalization)
        model = merge_model(graphdef, state, rest)
        probs = [jax.nn.softmax(model(view(video)), -1) for view in chosen]
        return sum(probs) / len(probs)

    return eval_step
