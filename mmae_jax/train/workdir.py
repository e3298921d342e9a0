"""Guards of a training workdir: one run at a time, one experiment per workdir.

- ``WorkdirLock``: ``run.lock`` holds the pid and host of the run using the workdir. A second
  run stops with a message; a lock left by a process that no longer runs on this host is
  replaced.
- ``check_saved_config``: a workdir holding a run (checkpoints or ``results.json``) is
  resumed only when its ``config.json`` matches the requested config in every field that
  changes the model, the data or the training; otherwise the differing fields are named.
- ``check_saved_data``: the workdir records the data its run trains on
  (``data_fingerprint.json``: clips and content hash of each split, the hashes of
  ``mmae-jax splits``); a resumption on other data is refused, naming the split and counts,
  unless ``checkpoint.allow_data_change`` is set (then the change is recorded in the file).
- ``move_aside``: ``--fresh`` renames an old workdir to ``<workdir>.old-<time>`` instead of
  mixing the new run into it.

On a multi-host run the checks run on process 0 alone and ``shared_verdict`` gives every
process their outcome, so a refusal stops all processes with the same line (none is left
waiting in a collective for a run that will not start).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from pathlib import Path
from typing import Callable, TypeVar

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from mmae_jax.config.names import canonical
from mmae_jax.errors import UserError, WorkdirError

T = TypeVar("T")
VERDICT_BYTES = 4096   # the longest refusal message shared between processes

LOCK_FILE = "run.lock"
CONFIG_FILE = "config.json"
DATA_FILE = "data_fingerprint.json"
INIT_REPORT_FILE = "init_report.txt"

# Fields that may change between a run and its resumption: they change neither the model,
# nor the data, nor the optimisation (logging, checkpoint cadence, evaluation batching,
# where the data lives, how the devices are laid out).
RESUMABLE_CHANGES = ("log_every_steps", "checkpoint.", "eval.batch_size", "data.data_dir", "data.prefetch",
                     "data.num_parallel_calls", "mesh.")


def _is_remote(path: Path | str) -> bool:
    return "://" in str(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def shared_verdict(check: Callable[[], T] | None) -> T | None:
    """``check()`` where it is given (process 0), its UserError raised on every process.

    Every process of the run must call this at the same point (``check`` None on the others):
    with several processes, process 0's outcome is broadcast, and the others raise a
    WorkdirError with its message. Returns ``check``'s result (None where not given).
    """
    error, result = None, None
    if check is not None:
        try:
            result = check()
        except UserError as raised:
            error = raised
    if jax.process_count() > 1:
        text = (str(error) if error is not None else "").encode()[:VERDICT_BYTES]
        sent = np.frombuffer(text.ljust(VERDICT_BYTES, b"\0"), np.uint8)
        received = bytes(np.asarray(multihost_utils.broadcast_one_to_all(sent), np.uint8)).rstrip(b"\0")
        if received and error is None:
            error = WorkdirError(received.decode(errors="replace"))
    if error is not None:
        raise error
    return result


class WorkdirLock:
    """``with WorkdirLock(workdir):`` holds ``workdir/run.lock`` for the duration of a run.

    Skipped for remote workdirs (``gs://...``: no atomic create). On a multi-host run only
    process 0 takes it (``main``), and every process enters and shares its verdict
    (``shared_verdict``).
    """

    def __init__(self, workdir: str | Path, *, main: bool = True, name: str = LOCK_FILE, holder: str = "run",
                 fix: str = "wait for it to end or choose another --workdir"):
        self.path = Path(workdir).absolute() / name
        self.active = main and not _is_remote(workdir)
        self.held = False
        self.holder, self.fix = holder, fix      # "in use by another <holder>"; how to get past it

    def __enter__(self) -> "WorkdirLock":
        shared_verdict(self._take if self.active else None)
        return self

    def _take(self) -> None:
        check_workdir_path(self.path.parent)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
        for _ in range(2):
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._refuse_unless_stale()
                continue
            with os.fdopen(descriptor, "w") as file:
                file.write(record + "\n")
            self.held = True
            return
        raise WorkdirError(f"{self.path} could not be taken", f"another {self.holder} may have started just now")

    def __exit__(self, *exc) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def _refuse_unless_stale(self) -> None:
        """Remove a stale lock (its process is gone from this host), else raise WorkdirError."""
        owner = read_lock(self.path.parent, self.path.name)
        if owner is None:       # removed meanwhile, or unreadable: a crash while writing it
            self.path.unlink(missing_ok=True)
            return
        here = owner.get("host") == socket.gethostname()
        if here and not _alive(int(owner.get("pid", -1))):
            self.path.unlink(missing_ok=True)
            return
        where = f"process {owner.get('pid')} on {owner.get('host')}"
        raise WorkdirError(f"{self.path.parent} is in use by another {self.holder} ({where})",
                           self.fix +
                           ("" if here else f"; if that run is gone, delete {self.path}"))


def read_lock(workdir: str | Path, name: str = LOCK_FILE) -> dict | None:
    """The ``{"pid", "host", "started"}`` record of ``workdir``'s lock ``name``, or None."""
    try:
        return json.loads((Path(workdir) / name).read_text())
    except (OSError, ValueError):
        return None


def holds_run(workdir: str | Path) -> bool:
    """True when ``workdir`` holds checkpoints or a finished run's ``results.json``."""
    workdir = Path(workdir)
    checkpoints = workdir / "checkpoints"
    return (workdir / "results.json").exists() or (checkpoints.is_dir() and any(checkpoints.iterdir()))


def holds_runs(workdir: str | Path) -> bool:
    """True when ``workdir`` is a run's workdir, or a kfold / sweep folder of them (a
    ``summary.json``, or runs one or two folders down: ``fold_k``, ``strategy/fold_k``)."""
    workdir = Path(workdir)
    if holds_run(workdir) or (workdir / CONFIG_FILE).exists() or (workdir / "summary.json").exists():
        return True
    return any(holds_run(sub) for sub in [*workdir.glob("*/"), *workdir.glob("*/*/")] if sub.is_dir())


def check_workdir_path(workdir: str | Path) -> None:
    """WorkdirError when ``workdir`` exists but is not a folder (a file of that name)."""
    if not _is_remote(workdir) and Path(workdir).exists() and not Path(workdir).is_dir():
        raise WorkdirError(f"--workdir {workdir} is a file, not a folder", "choose a folder for the run")


def flatten_tree(tree: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (config fields by dotted name)."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten_tree(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_differences(saved: dict, requested: dict) -> list[tuple[str, object, object]]:
    """``(field, saved, requested)`` for every dotted field whose values differ (JSON values)."""
    saved_flat, requested_flat = flatten_tree(saved), flatten_tree(requested)
    missing = object()
    return [(key, saved_flat.get(key, missing), requested_flat.get(key, missing))
            for key in sorted(set(saved_flat) | set(requested_flat))
            if saved_flat.get(key, missing) != requested_flat.get(key, missing)]


def _resumable(field: str) -> bool:
    return any(field == allowed or (allowed.endswith(".") and field.startswith(allowed))
               for allowed in RESUMABLE_CHANGES)


def check_saved_config(workdir: str | Path, config: ml_collections.ConfigDict) -> list[str]:
    """Write ``config.json``, or raise WorkdirError when the workdir holds another experiment.

    A workdir without a run gets the requested config. A workdir with a run is resumed only
    when every field outside ``RESUMABLE_CHANGES`` matches; changes of those fields are
    written and returned as ``"field: old -> new"`` lines for the caller to print.
    """
    path = Path(workdir) / CONFIG_FILE
    requested = json.loads(config.to_json_best_effort())
    text = json.dumps(requested, indent=2) + "\n"
    if not holds_run(workdir):
        path.write_text(text)
        write_data_fingerprint(workdir, data_fingerprint(config.data))
        return []
    if not path.exists():
        raise WorkdirError(f"{workdir} holds checkpoints or results but no {CONFIG_FILE}, so the experiment "
                           f"it holds is unknown", "restore its config.json, or rerun with --fresh to move it aside")
    try:
        saved = canonical(json.loads(path.read_text()))
    except ValueError as error:
        raise WorkdirError(f"{path} is damaged ({error}) and the workdir holds a run",
                           "rerun with --fresh to start a new run, or choose another --workdir") from error
    differences = config_differences(saved, requested)
    blocking = [d for d in differences if not _resumable(d[0])]
    if blocking:
        shown = "; ".join(f"{key}: {_show(old)} -> {_show(new)}" for key, old, new in blocking[:8])
        more = f" and {len(blocking) - 8} more" if len(blocking) > 8 else ""
        raise WorkdirError(f"{workdir} holds a run of another experiment ({shown}{more})",
                           "choose another --workdir, or rerun with --fresh to move the old run aside")
    data_changes = check_saved_data(workdir, config)
    if differences:
        path.write_text(text)
    return [f"{key}: {_show(old)} -> {_show(new)}" for key, old, new in differences] + data_changes


def data_fingerprint(data_cfg: ml_collections.ConfigDict) -> dict:
    """``{split: {"examples": n, "sha256": hash}}`` of the run's data: the split files of
    ``mmae-jax splits`` for the config's protocol and fold (clip ids, labels, speakers and the
    content hash of every stored example), one hash per split."""
    import hashlib

    from mmae_jax.data_prep.protocols import FOLD_PROTOCOLS, SPLITS
    from mmae_jax.data.split_files import split_tables

    folds = [data_cfg.fold] if data_cfg.protocol in FOLD_PROTOCOLS else None
    files = split_tables(data_cfg, folds)
    prefix = f"fold_{data_cfg.fold}/" if folds else ""
    return {split: {"examples": files[f"{prefix}{split}.csv"].count("\n") - 1,
                    "sha256": hashlib.sha256(files[f"{prefix}{split}.csv"].encode()).hexdigest()}
            for split in SPLITS}


def write_data_fingerprint(workdir: str | Path, splits: dict, changes: list | None = None) -> None:
    record = {"splits": splits, "changes": changes or []}
    (Path(workdir) / DATA_FILE).write_text(json.dumps(record, indent=2) + "\n")


def check_saved_data(workdir: str | Path, config: ml_collections.ConfigDict) -> list[str]:
    """WorkdirError when the data of ``config`` differs from the data the workdir's run was
    trained on, naming the split and the counts; with ``checkpoint.allow_data_change`` the
    change is recorded in ``data_fingerprint.json`` and returned as a warning line instead.
    A workdir written before fingerprints existed gets one now."""
    path = Path(workdir) / DATA_FILE
    current = data_fingerprint(config.data)
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        write_data_fingerprint(workdir, current)
        return []
    except ValueError as error:
        raise WorkdirError(f"{path} is damaged ({error}) and the workdir holds a run",
                           "delete it to accept the current data, or rerun with --fresh") from error
    changed = [split for split in current if current[split] != saved["splits"].get(split)]
    if not changed:
        return []
    shown = "; ".join(f"{split}: {_clips(saved['splits'].get(split))} -> {_clips(current[split])}" for split in changed)
    if not config.checkpoint.get("allow_data_change", False):
        raise WorkdirError(f"the data differs from the data {workdir}'s run was trained on ({shown})",
                           "point data.data_dir at that build, or resume on this data with "
                           "--config.checkpoint.allow_data_change=true (recorded in data_fingerprint.json)")
    change = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "from": saved["splits"], "to": current}
    write_data_fingerprint(workdir, current, [*saved.get("changes", []), change])
    return [f"data ({shown}), allowed by checkpoint.allow_data_change and recorded in {path}"]


def _clips(split: dict | None) -> str:
    if not split:
        return "(absent)"
    return f"{split['examples']} clips, sha256 {split['sha256'][:12]}"


def _show(value) -> str:
    return "(absent)" if not isinstance(value, (str, int, float, bool, list, dict, type(None))) else json.dumps(value)


def move_aside(workdir: str | Path) -> Path | None:
    """Rename ``workdir`` to ``<workdir>.old-<YYYYmmdd-HHMMSS>`` (None when it does not exist
    or is empty).

    Refuses while a live run holds its lock, and for a folder that holds no run (``holds_runs``:
    ``--workdir .`` must never move the current folder's files aside).
    """
    workdir = Path(workdir).absolute()
    check_workdir_path(workdir)
    if not workdir.exists() or not any(workdir.iterdir()):
        return None
    if not holds_runs(workdir):
        raise WorkdirError(f"--fresh: {workdir} holds no mmae-jax run (no checkpoints, config.json, results.json "
                           f"or summary.json), so it is not moved aside",
                           "choose a new or empty --workdir for the run")
    owner = read_lock(workdir)
    if owner and (owner.get("host") != socket.gethostname() or _alive(int(owner.get("pid", -1)))):
        raise WorkdirError(f"{workdir} is in use by process {owner.get('pid')} on {owner.get('host')}",
                           "wait for it to end before starting fresh")
    target = workdir.with_name(f"{workdir.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        workdir.rename(target)
    except OSError as error:
        if error.errno in (errno.EXDEV, errno.ENOTEMPTY, errno.EEXIST):
            raise WorkdirError(f"could not move {workdir} aside to {target} ({error.strerror})",
                               "move or delete it yourself") from error
        raise
    return target


def write_init_report(workdir: str | Path, init: str, report) -> str:
    """Write the load report of ``config.init`` to ``workdir/init_report.txt``; returns its one-line summary."""
    summary = (f"initial weights from {init}: loaded {len(report.loaded)} tensors, "
               f"{len(report.left_at_init) + len(report.shape_mismatches)} left at init, "
               f"{len(report.unused)} unused")
    (Path(workdir) / INIT_REPORT_FILE).write_text(f"{summary}\n{report.describe()}\n")
    return f"{summary} (details: {Path(workdir) / INIT_REPORT_FILE})"
