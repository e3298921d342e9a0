"""Metrics: the paper's classification scores, and the train steps' metrics kept on the device.

Classification: WAR, UAR, per-class recall and confusion matrix (``classification_report``), and
the loss of a split's predicted probabilities (``cross_entropy``).

Train steps (``MetricWindow``): the loop never waits for a step's numbers: each step's metric
scalars stay ``jax.Array``s until the loop needs them (a logging step, a checkpoint, a
preemption check). Then all the pending ones come over in one transfer; the first step whose
``finite`` flag is 0 stops the run with its step number and values, and the logged numbers are
means over the window. The host may run at most ``max_ahead`` steps ahead of the devices (it
waits for the step that many back to finish, without copying anything), which bounds the
batches queued on the devices.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import numpy as np

from mmae_jax.errors import UserError


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``[K, K]`` counts; row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
    return matrix


def classification_report(labels: np.ndarray, predictions: np.ndarray,
                          class_names: Sequence[str]) -> dict:
    """WAR (accuracy), UAR (mean recall over classes present), recalls and confusion, in percent.

    Classes with no example in ``labels`` have no recall (``None``) and are left out of UAR.
    """
    matrix = confusion_matrix(labels, predictions, len(class_names))
    support = matrix.sum(axis=1)
    present = support > 0
    recall = np.where(present, np.diag(matrix) / np.maximum(support, 1), np.nan) * 100.0
    total = int(support.sum())
    return {
        "war": float(np.trace(matrix) / total * 100.0) if total else float("nan"),
        "uar": float(np.nanmean(recall)) if present.any() else float("nan"),
        "per_class_recall": {name: (None if np.isnan(r) else float(r)) for name, r in zip(class_names, recall)},
        "confusion_matrix": matrix.tolist(),
        "num_examples": total,
    }


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean ``-log p[label]`` of ``probabilities [N, K]`` (each row sums to 1) for ``labels [N]``:
    the loss of a split's predictions, without the label smoothing or mixup of training; a
    probability that underflowed to 0 counts as float32's smallest normal (loss 87.3)."""
    chosen = np.asarray(probabilities, np.float64)[np.arange(len(labels)), np.asarray(labels, np.int64)]
    return float(-np.log(np.maximum(chosen, np.finfo(np.float32).tiny)).mean())


class NonFiniteError(UserError, FloatingPointError):
    """The loss or the gradient norm became NaN or Inf (one ``error:`` line at the command line)."""


class MetricWindow:
    """Per-step metric dicts (``loss``, ``grad_norm``, ``finite``, the task's) of one window."""

    def __init__(self, max_ahead: int = 2):
        self.max_ahead = max_ahead
        self._pending: list[tuple[int, dict]] = []      # (step, device scalars)
        self._fetched: list[dict[str, float]] = []       # host values, checked

    def add(self, step: int, metrics: dict) -> None:
        """Keep step ``step``'s metrics (device arrays; nothing is transferred); first wait
        until the step ``max_ahead`` before it has finished on the devices."""
        if len(self._pending) >= self.max_ahead > 0:
            jax.block_until_ready(self._pending[-self.max_ahead][1])
        self._pending.append((step, metrics))

    def check(self) -> None:
        """Fetch the pending steps (one transfer) and raise ``NonFiniteError`` naming the first
        step whose loss or gradient norm is NaN or Inf."""
        if not self._pending:
            return
        steps = [step for step, _ in self._pending]
        values = jax.device_get([metrics for _, metrics in self._pending])
        self._pending = []
        for step, row in zip(steps, values):
            row = {name: float(value) for name, value in row.items()}
            if not row.get("finite", 1.0):
                bad = [name for name in ("loss", "grad_norm") if not math.isfinite(row.get(name, 0.0))]
                first = bad[0] if bad else "a gradient"
                raise NonFiniteError(
                    f"training stopped at step {step}: {first} is {row.get(first, 'not finite')} "
                    f"(loss={row['loss']}, grad_norm={row['grad_norm']}); the last checkpoint before it is kept",
                    "lower optim.lr, check the data, or set optim.grad_clip_norm")
            self._fetched.append(row)

    def means(self) -> dict[str, float]:
        """Means over the steps since the last call (checked first), ``finite`` left out; the
        window starts again empty."""
        self.check()
        rows, self._fetched = self._fetched, []
        if not rows:
            return {}
        return {name: float(np.mean([row[name] for row in rows])) for name in rows[0] if name != "finite"}
