"""Jitted train and eval steps over a functional train state.

The train state is a dict of pure pytrees: ``step`` (int32), ``trainable`` and ``frozen``
parameter dicts (``frozen`` is empty unless the backbone is frozen), and ``opt_state``.
Random keys (dropout, mixup, masks) are derived from (seed, step), so a resumed run draws
the same randomness. What is optimised is a task's loss function:
``task_loss(model, batch, key) -> (loss, {name: scalar})``; it reads ``batch["video"]``
already converted to the model input.

Batches arrive as uint8 pixel values (``[B, T, S, S, 3]``); every step turns them into the
normalised float input with ``normalize.to_model_input``, once, on the device.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from mmae_jax.config.validate import check_views
from mmae_jax.data.normalize import to_model_input
from mmae_jax.train.mixup import mix_batch, smooth_labels

TaskLoss = Callable[[nnx.Module, dict, jax.Array], tuple[jax.Array, dict]]


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
