"""Training metrics kept on the device between logging steps.

The loop never waits for a step's numbers: each step's metric scalars stay ``jax.Array``s
until the loop needs them (a logging step, a checkpoint, a preemption check). Then all the
pending ones come over in one transfer; the first step whose ``finite`` flag is 0 stops the
run with its step number and values, and the logged numbers are means over the window.
The host may run at most ``max_ahead`` steps ahead of the devices (it waits for the step that
many back to finish, without copying anything), which bounds the batches queued on the devices.
"""

from __future__ import annotations

import math

import jax
import numpy as np

from mmae_jax.errors import UserError


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
