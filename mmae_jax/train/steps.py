"""Jitted train and eval steps over a functional train state.

The train state is a dict of pure pytrees: ``step`` (int32), ``trainable`` and ``frozen``
parameter dicts (``frozen`` is empty unless the backbone is frozen), and ``opt_state``.
Dropout keys are derived from (seed, step), so a resumed run draws the same randomness.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from mmae_jax.train.mixup import mix_batch, smooth_labels


def _model(graphdef, state, rest):
    return nnx.merge(graphdef, state["trainable"], state["frozen"], rest)


def make_train_step(graphdef, rest, tx: optax.GradientTransformation, cfg, *, num_classes: int):
    """``step(state, batch) -> (state, metrics)``; batch holds ``video [B,T,H,W,C]``, ``label [B]``.

    Metrics: ``loss``, ``grad_norm`` (global norm of the gradients), ``accuracy``.
    """
    base_key = jax.random.key(cfg.seed)

    def train_step(state, batch):
        step_key = jax.random.fold_in(base_key, state["step"])
        mix_key, dropout_key = jax.random.split(step_key)
        targets = smooth_labels(batch["label"], num_classes, cfg.optim.label_smoothing)
        video, targets = mix_batch(mix_key, batch["video"], targets,
                                   mixup_alpha=cfg.optim.mixup_alpha, cutmix_alpha=cfg.optim.cutmix_alpha)

        def loss_fn(trainable):
            model = _model(graphdef, {**state, "trainable": trainable}, rest)
            nnx.reseed(model, dropout=dropout_key)
            logits = model(video)
            return optax.softmax_cross_entropy(logits, targets).mean(), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["trainable"])
        updates, opt_state = tx.update(grads, state["opt_state"], state["trainable"])
        new_state = dict(state, step=state["step"] + 1, opt_state=opt_state,
                         trainable=optax.apply_updates(state["trainable"], updates))
        metrics = dict(loss=loss, grad_norm=optax.global_norm(grads),
                       accuracy=jnp.mean(jnp.argmax(logits, -1) == batch["label"]))
        return new_state, metrics

    return train_step


def make_eval_step(graphdef, rest, views: tuple[str, ...] = ("identity",)):
    """``eval_step(state, video) -> probabilities [B, K]`` averaged over test-time ``views``.

    Views: ``identity`` and ``hflip`` (every fused frame mirrored left-right).
    """
    transforms = {"identity": lambda v: v, "hflip": lambda v: v[:, :, :, ::-1]}
    unknown = sorted(set(views) - set(transforms))
    if unknown:
        raise ValueError(f"unknown evaluation views {unknown}; choose from {sorted(transforms)}")

    def eval_step(state, video):
        model = _model(graphdef, state, rest)
        probs = [jax.nn.softmax(model(transforms[v](video)), -1) for v in views]
        return sum(probs) / len(probs)

    return eval_step
