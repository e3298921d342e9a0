"""The optimiser: AdamW (no decay on 1-D tensors and biases, or on every weight as Keras's
AdamW does), layer-wise lr decay, warm-up + cosine schedule, global-norm clipping and
gradient accumulation, all optax."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import optax

from mmae_jax.model.paths import map_named

_BLOCK = re.compile(r"^(?:encoder\.)?blocks\.(\d+)\.")


def decay_mask(params, decay_all: bool = False):
    """True where weight decay applies: tensors of rank >= 2 that are not biases or the mask
    token (VideoMAE), or every tensor when ``decay_all`` (Keras AdamW, the original notebook)."""
    if decay_all:
        return jax.tree.map(lambda _: True, params)
    return map_named(lambda name, leaf: leaf.ndim >= 2 and not name.endswith("bias") and "mask_token" not in name,
                     params)


def layer_id(dotted_path: str, depth: int) -> int:
    """VideoMAE's layer id: 0 for the embedding, i + 1 for block i, depth + 1 for the rest."""
    if "patch_embed" in dotted_path or dotted_path.startswith(("mask_token", "pos_embed")):
        return 0
    match = _BLOCK.match(dotted_path)
    return int(match.group(1)) + 1 if match else depth + 1


def layerwise_lr_decay(params, decay: float, depth: int) -> optax.GradientTransformation:
    """Scale each update by ``decay ** (depth + 1 - layer_id)`` (1.0 everywhere when decay = 1)."""
    scales = map_named(lambda name, _: decay ** (depth + 1 - layer_id(name, depth)), params)

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda u, s: u * jnp.asarray(s, u.dtype), updates, scales), state

    return optax.GradientTransformation(lambda _: optax.EmptyState(), update)


def learning_rate_schedule(optim_cfg, total_updates: int, updates_per_epoch: int,
                           batch_size: int) -> optax.Schedule:
    """VideoMAE's ``utils.cosine_scheduler``, one value per update: over the ``W`` warm-up
    updates a linear ramp from 0 that reaches the peak at update ``W - 1`` (``np.linspace``),
    then a cosine from the peak down to ``min_lr`` over the remaining updates.

    With ``scale_lr_by_batch`` (VideoMAE) the peak ``lr`` and ``min_lr`` are both multiplied
    by ``batch_size / 256``.
    """
    scale = batch_size / 256.0 if optim_cfg.scale_lr_by_batch else 1.0
    peak, final = optim_cfg.lr * scale, optim_cfg.min_lr * scale
    warmup = min(int(optim_cfg.warmup_epochs * updates_per_epoch), total_updates)
    cosine = optax.cosine_decay_schedule(peak, max(total_updates - warmup, 1), alpha=final / peak if peak else 0.0)
    if not warmup:
        return cosine
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup - 1), cosine], [warmup])


def make_optimizer(optim_cfg, params, *, depth: int, total_updates: int, updates_per_epoch: int,
                   batch_size: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """The full chain for ``params`` (the trainable ones), wrapped for gradient accumulation.

    ``total_updates`` and ``updates_per_epoch`` count optimiser updates (micro-steps divided
    by ``grad_accum_steps``); ``batch_size`` is the global batch of one update. ``optim_cfg.eps``
    is Adam's epsilon, ``optim_cfg.decay_all`` decays biases and norms too.
    """
    schedule = learning_rate_schedule(optim_cfg, total_updates, updates_per_epoch, batch_size)
    parts = []
    if optim_cfg.grad_clip_norm:
        parts.append(optax.clip_by_global_norm(optim_cfg.grad_clip_norm))
    parts.append(optax.adamw(schedule, b1=optim_cfg.b1, b2=optim_cfg.b2, eps=optim_cfg.eps,
                             weight_decay=optim_cfg.weight_decay,
                             mask=decay_mask(params, optim_cfg.decay_all)))
    if optim_cfg.layer_decay != 1.0:
        parts.append(layerwise_lr_decay(params, optim_cfg.layer_decay, depth))
    tx = optax.chain(*parts)
    if optim_cfg.grad_accum_steps > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=optim_cfg.grad_accum_steps)
    return tx, schedule


def learning_rate_used(schedule: optax.Schedule, steps_done: int, accum_steps: int = 1) -> float:
    """The learning rate of the last update made in ``steps_done`` training steps (updates
    count from 0, one every ``accum_steps`` steps); the first update's before any was made."""
    return float(schedule(max(steps_done // accum_steps - 1, 0)))
