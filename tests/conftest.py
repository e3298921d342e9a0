"""Fixtures and settings shared by the test files.

``data_dir``: the tiny stored dataset of ``stored_dataset.write_stored_dataset`` (48 clips of
12 speakers, 4 classes), written once per session; under pytest-xdist once per worker. Tests
read it and never write into it. ``stored_dataset.tiny_config`` / ``tiny_flags`` give the
experiment config that trains on it.

XLA compilation cache: the tests compile the same tiny models again and again (every
training run jits the same initialiser, train and eval steps; a resumed run compiles what the
interrupted one did), so the session keeps JAX's persistent compilation cache in a temporary
folder that is removed at the end. The xdist workers and every subprocess a test starts share
it: the folder and the cache settings are exported as ``JAX_*`` environment variables, which JAX
reads when it starts. A cached executable is the one XLA compiled for the same program and
flags, so results do not change. ``JAX_COMPILATION_CACHE_DIR`` set by the caller is used
instead (and kept).

XLA's CPU backend compiles faster in the tests: LLVM optimisation level 0
(``--xla_backend_optimization_level=0``) and XLA's classic loop emitters for fused operations
instead of its newer MLIR fusion emitters (``--xla_cpu_use_fusion_emitters=false``), both added
to ``XLA_FLAGS`` and inherited by subprocesses (a value the caller sets for either flag is kept).
The programs (HLO) are the ones users run; only their machine code is emitted differently and
less optimised, which the tests' tiny models do not notice. Level 0 cuts a tiny training run's
CPU time by about a quarter (compilation is most of it; the losses of the tiny pre-training run
agree to every printed digit). The classic emitters compile the several hundred single
operations that eager code (initialisers, forward passes and ``nnx.grad`` outside ``jit``)
compiles one by one in less than half the CPU time.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from stored_dataset import write_stored_dataset
from suite_map import CLASSES, SPEED

_FAST_COMPILES = {"--xla_backend_optimization_level": "0", "--xla_cpu_use_fusion_emitters": "false"}


def with_fast_compiles(xla_flags: str = "") -> str:
    """``xla_flags`` with the fast-compiling settings of XLA's CPU backend added, except those it sets."""
    added = [f"{flag}={value}" for flag, value in _FAST_COMPILES.items() if flag not in xla_flags]
    return " ".join([xla_flags, *added]).strip()


# JAX's cache settings for the tests: cache compilations from 0.1 s and of any size; a size limit
# turns on the cache's file lock, which the processes writing to it at the same time need.
_CACHE_SETTINGS = {"jax_persistent_cache_min_compile_time_secs": 0.1,
                   "jax_persistent_cache_min_entry_size_bytes": 0,
                   "jax_compilation_cache_max_size": 2 ** 31}


def pytest_configure(config):
    os.environ["XLA_FLAGS"] = with_fast_compiles(os.environ.get("XLA_FLAGS", ""))
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return    # the caller's cache, or (in an xdist worker) the controller's: JAX reads it at import
    import jax

    settings = {"jax_compilation_cache_dir": tempfile.mkdtemp(prefix="mmae-jax-tests-xla-"), **_CACHE_SETTINGS}
    for name, value in settings.items():
        os.environ[name.upper()] = str(value)     # for the workers and every subprocess
        jax.config.update(name, value)            # for this process, which may have imported jax already
    config._mmae_jax_cache_owner = True


def pytest_unconfigure(config):
    if hasattr(config, "_mmae_jax_groups_dir"):
        shutil.rmtree(config._mmae_jax_groups_dir, ignore_errors=True)
    if getattr(config, "_mmae_jax_cache_owner", False):
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
        for name in ("jax_compilation_cache_dir", *_CACHE_SETTINGS):
            os.environ.pop(name.upper(), None)


# ``--dist loadgroup`` (make test, make test-fast): one worker runs every test of an
# ``xdist_group``, so a group's costly module fixture (a trained run, a built dataset) is built
# once. pytest-xdist tells its scheduler a test's group through a suffix on the node id, which
# pytest 9.2 no longer lets a plugin change (pytest-dev/pytest-xdist#1386). These hooks pass the
# groups through public hooks instead: each worker writes every grouped test's node id and group
# to a file at collection (``xdist_group`` marks, read with ``iter_markers``); the controller's
# scheduler (xdist's ``pytest_xdist_make_scheduler``) reads that file and keeps each group on one
# worker. Ungrouped tests are spread one by one, as loadgroup does.
_GROUPS_FILE = "mmae_jax_xdist_groups"     # key of the file's path in each worker's ``workerinput``


def _grouped(config) -> bool:
    return getattr(config.option, "dist", None) == "loadgroup"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """Controller, once per worker: where the worker writes the groups."""
    if _grouped(node.config):
        node.workerinput[_GROUPS_FILE] = str(_groups_path(node.config))


def _groups_path(config) -> Path:
    if not hasattr(config, "_mmae_jax_groups_dir"):
        config._mmae_jax_groups_dir = tempfile.mkdtemp(prefix="mmae-jax-tests-groups-")
    return Path(config._mmae_jax_groups_dir) / "groups.json"


@pytest.hookimpl(tryfirst=True)     # before pytest's own ``-m`` selection reads the marks
def pytest_collection_modifyitems(config, items):
    """Mark every test not marked ``slow`` with its file's speed class (``unit`` / ``integration``,
    tests/suite_map.py's ``SPEED``), so ``-m unit`` selects the quick layer; a test that carries a
    class mark of its own keeps it. Then, in an xdist worker, write ``{node id: group}`` of every
    test with an ``xdist_group`` mark."""
    for item in items:
        speed = SPEED.get(item.path.name)
        if speed in ("unit", "integration") and not any(item.get_closest_marker(name) for name in CLASSES):
            item.add_marker(speed)
    path = getattr(config, "workerinput", {}).get(_GROUPS_FILE)
    if not path:
        return
    groups = {}
    for item in items:
        names = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                        for mark in item.iter_markers("xdist_group")})
        if names:
            groups[item.nodeid] = "_".join(names)
    partial = Path(f"{path}.{os.getpid()}")
    partial.write_text(json.dumps(groups))
    os.replace(partial, path)                   # every worker writes the same table, whole


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Controller: under ``--dist loadgroup``, a scheduler that reads the groups the workers wrote."""
    if not _grouped(config):
        return None
    from xdist.scheduler import LoadScopeScheduling

    path = _groups_path(config)

    class MarkedGroupScheduling(LoadScopeScheduling):
        """xdist's scope scheduling with a test's ``xdist_group`` as its scope (its node id when
        it has none); the table is read once every worker has sent its collection."""

        groups: dict | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:
                self.groups = json.loads(path.read_text()) if path.exists() else {}
            return self.groups.get(nodeid) or self.groups.get(nodeid.rpartition("@")[0]) or nodeid

    return MarkedGroupScheduling(config, log)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tfds")
    write_stored_dataset(path)
    return path
