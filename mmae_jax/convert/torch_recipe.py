"""VideoMAE's fine-tuning optimiser recipe in PyTorch, for training-parity checks.

Written after VideoMAE's own training code (not after ``mmae_jax.train``):

- parameter groups as ``optim_factory.get_parameter_groups``: a parameter without
  ``requires_grad`` is left out; one of rank 1, a ``.bias`` or a name in the model's
  ``no_weight_decay()`` list gets weight decay 0; each group carries the layer scale
  ``layer_decay ** (depth + 1 - layer_id)`` of ``get_num_layer_for_vit``;
- the learning rate of every step from ``utils.cosine_scheduler``: ``np.linspace`` from 0
  to the peak over the warm-up steps, then a cosine from the peak to ``min_lr``; with
  ``scale_lr_by_batch`` the peak and ``min_lr`` are both multiplied by ``batch / 256``
  (``run_class_finetuning.py``); before each step every group's ``lr`` is set to
  ``schedule[it] * lr_scale`` (``engine_for_finetuning.py``);
- the loss: timm's ``LabelSmoothingCrossEntropy`` (``CrossEntropyLoss`` at smoothing 0);
- ``torch.optim.AdamW``; gradients clipped to a global norm when ``grad_clip_norm`` > 0.

Two optimiser switches that VideoMAE does not have are read from the config when present:
``eps`` (AdamW's epsilon; VideoMAE's default 1e-8) and ``decay_all`` (weight decay on
every weight, biases and norms too, as Keras' AdamW does).
"""

from __future__ import annotations

import math
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# ``VisionTransformer.no_weight_decay()`` of VideoMAE's modeling_finetune.py.
NO_WEIGHT_DECAY = ("pos_embed", "cls_token")


def vit_layer_id(name: str, num_max_layer: int) -> int:
    """``get_num_layer_for_vit``: 0 for the embedding, i + 1 for ``blocks.i``, the last id for the rest."""
    if name in ("cls_token", "mask_token", "pos_embed") or name.startswith("patch_embed"):
        return 0
    if name.startswith("blocks"):
        return int(name.split(".")[1]) + 1
    return num_max_layer - 1


def layer_scales(layer_decay: float, depth: int) -> list[float]:
    """The assigner's values: ``layer_decay ** (depth + 1 - i)`` for ids 0 ... depth + 1."""
    return [layer_decay ** (depth + 1 - i) for i in range(depth + 2)]


def skips_weight_decay(name: str, param: torch.Tensor) -> bool:
    """VideoMAE's rule: rank-1 tensors, biases and the model's listed names get no weight decay."""
    return param.ndim == 1 or name.endswith(".bias") or name in NO_WEIGHT_DECAY


def parameter_groups(model: nn.Module, weight_decay: float, layer_decay: float, depth: int, *,
                     decay_all: bool = False) -> list[dict]:
    """Groups named ``layer_<id>_decay`` / ``layer_<id>_no_decay`` (ids only when ``layer_decay`` < 1).

    Each group: ``params``, ``names``, ``weight_decay``, ``lr_scale``.
    """
    scales = layer_scales(layer_decay, depth) if layer_decay < 1.0 else None
    groups: dict[str, dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = not decay_all and skips_weight_decay(name, param)
        group_name = "no_decay" if no_decay else "decay"
        scale = 1.0
        if scales is not None:
            layer = vit_layer_id(name, len(scales))
            group_name, scale = f"layer_{layer}_{group_name}", scales[layer]
        group = groups.setdefault(group_name, dict(name=group_name, params=[], names=[], lr_scale=scale,
                                                   weight_decay=0.0 if no_decay else weight_decay))
        group["params"].append(param)
        group["names"].append(name)
    return list(groups.values())


def cosine_schedule(base: float, final: float, epochs: int, steps_per_epoch: int,
                    warmup_epochs: float) -> np.ndarray:
    """``utils.cosine_scheduler``: one learning rate per step, ``epochs * steps_per_epoch`` of them."""
    warmup_steps = int(warmup_epochs * steps_per_epoch)
    warmup = np.linspace(0.0, base, warmup_steps) if warmup_steps > 0 else np.array([])
    decay_steps = epochs * steps_per_epoch - warmup_steps
    cosine = np.array([final + 0.5 * (base - final) * (1 + math.cos(math.pi * i / decay_steps))
                       for i in range(decay_steps)])
    return np.concatenate((warmup, cosine))


def label_smoothing_cross_entropy(logits: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
    """timm's ``LabelSmoothingCrossEntropy``: ``(1 - s) * NLL + s * mean over classes of -log p``."""
    if smoothing == 0.0:
        return F.cross_entropy(logits, target)
    log_probs = F.log_softmax(logits, dim=-1)
    nll = -log_probs.gather(dim=-1, index=target.unsqueeze(1)).squeeze(1)
    return ((1.0 - smoothing) * nll + smoothing * -log_probs.mean(dim=-1)).mean()


class VideoMAERecipe:
    """One optimiser step at a time on ``model`` (``[B, C, T, H, W] -> logits``), VideoMAE's way.

    ``optim_cfg`` holds the fields of our configs' ``optim`` block; ``epochs``,
    ``steps_per_epoch`` and ``batch_size`` size the schedule as VideoMAE's script does.
    """

    def __init__(self, model: nn.Module, optim_cfg, *, depth: int, epochs: int, steps_per_epoch: int,
                 batch_size: int):
        scale = batch_size / 256.0 if optim_cfg.scale_lr_by_batch else 1.0
        self.model = model
        self.smoothing = optim_cfg.label_smoothing
        self.clip_norm = optim_cfg.grad_clip_norm
        self.schedule = cosine_schedule(optim_cfg.lr * scale, optim_cfg.min_lr * scale, epochs, steps_per_epoch,
                                        optim_cfg.warmup_epochs)
        self.groups = parameter_groups(model, optim_cfg.weight_decay, optim_cfg.layer_decay, depth,
                                       decay_all=bool(optim_cfg.get("decay_all", False)))
        self.optimizer = torch.optim.AdamW(
            [dict(params=g["params"], weight_decay=g["weight_decay"]) for g in self.groups],
            lr=self.schedule[0], betas=(optim_cfg.b1, optim_cfg.b2), eps=optim_cfg.get("eps", 1e-8))
        self.parameters = [p for g in self.groups for p in g["params"]]

    def step(self, it: int, video: torch.Tensor, label: torch.Tensor) -> tuple[float, float, float]:
        """Train on one batch at global step ``it``; returns ``(loss, gradient norm, base lr)``."""
        for group, spec in zip(self.optimizer.param_groups, self.groups):
            group["lr"] = self.schedule[it] * spec["lr_scale"]
        self.optimizer.zero_grad()
        loss = label_smoothing_cross_entropy(self.model(video), label, self.smoothing)
        loss.backward()
        if self.clip_norm:
            grad_norm = nn.utils.clip_grad_norm_(self.parameters, self.clip_norm)
        else:
            grad_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad)
                                                              for p in self.parameters]))
        self.optimizer.step()
        return float(loss.detach()), float(grad_norm), float(self.schedule[it])
