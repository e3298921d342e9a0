"""orbax checkpoints of the train state, and clean exits on SIGTERM (preemption) and Ctrl-C.

Each checkpoint holds the sharded train state (``state``) and the task's own state as a
small JSON item (``TaskState.to_json``: evaluation history, best-validation bookkeeping;
stored under the item name ``extra``), so a resumed run ends with the same results as an
uninterrupted one.

A checkpoint that can not be read (a truncated file, a missing metadata file) is moved to
``WORKDIR/damaged_checkpoints/STEP`` (never deleted) and the run resumes from the newest
intact one, with one warning line (``restore_latest``).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from mmae_jax.errors import InputError
from mmae_jax.model.location import CHECKPOINTS_DIR, STATE_ITEM

log = logging.getLogger(__name__)
DAMAGED_DIR = "damaged_checkpoints"
# What orbax / tensorstore raise for a checkpoint whose files are cut short, missing or garbled:
# ValueError, OSError, KeyError and a bare ``Exception`` ("Encountered error while reading
# array index"). A step whose restore fails is kept aside, never deleted.
_READ_ERRORS = (Exception,)


def checkpoint_manager(workdir: str | Path, *, keep: int, every_steps: int) -> ocp.CheckpointManager:
    """Asynchronous saves every ``every_steps`` steps, the latest ``keep`` kept."""
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=every_steps,
                                           enable_async_checkpointing=True, create=True)
    return ocp.CheckpointManager(Path(workdir).absolute() / CHECKPOINTS_DIR, options=options,
                                 item_names=(STATE_ITEM, "extra"))


def save(manager: ocp.CheckpointManager, step: int, state, task_state: dict, *, force: bool = False) -> bool:
    """Save ``step`` when the interval says so (or ``force``); a step saved already is kept."""
    if manager.latest_step() == step:
        return False
    return manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                       extra=ocp.args.JsonSave(task_state)), force=force)


def restore_latest(manager: ocp.CheckpointManager, abstract_state):
    """``(step, state, task state JSON)`` of the newest readable checkpoint placed like
    ``abstract_state``, or None when there is none.

    Newer checkpoints that can not be read are moved to ``WORKDIR/damaged_checkpoints/``
    (process 0; one warning line each names the step and the reason). When none can be read,
    InputError names them and nothing is moved.
    """
    damaged = []
    for step in sorted(manager.all_steps(), reverse=True):
        try:
            restored = manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state), extra=ocp.args.JsonRestore()))
        except _READ_ERRORS as error:
            damaged.append((step, _reason(error)))
            continue
        if damaged:
            _set_aside(manager, damaged, step)
        return step, restored["state"], dict(restored["extra"] or {})
    if damaged:
        directory = Path(manager.directory)
        raise InputError(f"no checkpoint in {directory} can be read (" +
                         "; ".join(f"step {step}: {reason}" for step, reason in damaged) + ")",
                         f"move {directory} aside to start anew, or rerun with --fresh")
    return None


def _reason(error: BaseException) -> str:
    """The first line of the innermost error of a failed restore, shortened (orbax wraps
    tensorstore's error, whose text runs to many lines)."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _set_aside(manager: ocp.CheckpointManager, damaged: list[tuple[int, str]], resumed: int) -> None:
    """Move the ``damaged`` steps' folders to ``WORKDIR/damaged_checkpoints`` and warn, once each."""
    directory = Path(manager.directory)
    target_root = directory.parent / DAMAGED_DIR
    if jax.process_index() == 0:
        target_root.mkdir(exist_ok=True)
        for step, reason in damaged:
            target = target_root / str(step)
            if target.exists():
                target = target_root / f"{step}.{time.strftime('%Y%m%d-%H%M%S')}"
            (directory / str(step)).rename(target)
            log.warning("the checkpoint of step %d can not be read (%s); kept in %s, resuming from step %d",
                        step, reason, target, resumed)
    multihost_utils.sync_global_devices("damaged checkpoints set aside")
    manager.reload()


def abstract_like(tree, shardings):
    """ShapeDtypeStructs carrying ``shardings``: the target that orbax restores into."""
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)


class PreemptionWatcher:
    """Turns SIGTERM and SIGINT (Ctrl-C) into a flag that every host agrees on at the same step.

    ``signal_name``: the first signal this host received (``"SIGTERM"`` when another host's
    signal stopped the run). A second Ctrl-C interrupts at once (KeyboardInterrupt).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self._event = threading.Event()
        self._previous: dict[int, object] = {}
        self.signal_name = "SIGTERM"

    def _handle(self, number, _frame) -> None:
        if self._event.is_set() and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(number).name
        self._event.set()

    def __enter__(self) -> "PreemptionWatcher":
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._handle) for number in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous = {}

    def requested(self) -> bool:
        """True on every host once any host got SIGTERM (one small all-gather per call)."""
        local = self._event.is_set()
        if jax.process_count() == 1:
            return local
        return bool(np.any(multihost_utils.process_allgather(np.array(local))))
