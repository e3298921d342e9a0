"""orbax checkpoints of the train state, and clean exits on SIGTERM (preemption).

Each checkpoint holds the sharded train state (``state``) and the task's own state as a
small JSON item (``TaskState.to_json``: evaluation history, best-validation bookkeeping;
stored under the item name ``extra``), so a resumed run ends with the same results as an
uninterrupted one.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils


def checkpoint_manager(workdir: str | Path, *, keep: int, every_steps: int) -> ocp.CheckpointManager:
    """Asynchronous saves every ``every_steps`` steps, the latest ``keep`` kept."""
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=every_steps,
                                           enable_async_checkpointing=True, create=True)
    return ocp.CheckpointManager(Path(workdir).absolute() / "checkpoints", options=options,
                                 item_names=("state", "extra"))


def save(manager: ocp.CheckpointManager, step: int, state, task_state: dict, *, force: bool = False) -> bool:
    """Save ``step`` when the interval says so (or ``force``); a step saved already is kept."""
    if manager.latest_step() == step:
        return False
    return manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                       extra=ocp.args.JsonSave(task_state)), force=force)


def restore_latest(manager: ocp.CheckpointManager, abstract_state):
    """``(step, state, task state JSON)`` of the latest checkpoint placed like ``abstract_state``, or None."""
    step = manager.latest_step()
    if step is None:
        return None
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), extra=ocp.args.JsonRestore()))
    return step, restored["state"], dict(restored["extra"] or {})


def abstract_like(tree, shardings):
    """ShapeDtypeStructs carrying ``shardings``: the target that orbax restores into."""
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)


class PreemptionWatcher:
    """Turns SIGTERM into a flag that every host agrees on at the same step."""

    def __init__(self):
        self._event = threading.Event()
        self._previous = None

    def __enter__(self) -> "PreemptionWatcher":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, lambda *_: self._event.set())
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    def requested(self) -> bool:
        """True on every host once any host got SIGTERM (one small all-gather per call)."""
        local = self._event.is_set()
        if jax.process_count() == 1:
            return local
        return bool(np.any(multihost_utils.process_allgather(np.array(local))))
