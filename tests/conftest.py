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

XLA's CPU backend compiles with LLVM optimisation level 0 in the tests
(``--xla_backend_optimization_level=0`` added to ``XLA_FLAGS``, inherited by subprocesses;
an optimisation level set by the caller is kept): the programs (HLO) are the ones users run,
only their machine code is less optimised, which the tests' tiny models do not notice. It cuts
a tiny training run's CPU time by about a quarter (compilation is most of it); the losses of
the tiny pre-training run agree to every printed digit.
"""

import os
import shutil
import tempfile

import pytest

from stored_dataset import write_stored_dataset

_FAST_COMPILES = "--xla_backend_optimization_level=0"


def with_fast_compiles(xla_flags: str = "") -> str:
    """``xla_flags`` with LLVM optimisation level 0 for XLA's CPU backend, unless it sets a level."""
    if "--xla_backend_optimization_level" in xla_flags:
        return xla_flags
    return f"{xla_flags} {_FAST_COMPILES}".strip()


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
    if getattr(config, "_mmae_jax_cache_owner", False):
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
        for name in ("jax_compilation_cache_dir", *_CACHE_SETTINGS):
            os.environ.pop(name.upper(), None)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """``--dist loadgroup``: give each ``xdist_group`` test its ``@group`` node-id suffix.

    pytest-xdist 3.8 sends a group to one worker by appending ``@group`` to the node id through
    ``item._nodeid``, which pytest 9.2 no longer reads (pytest-dev/pytest-xdist#1386): the group
    would be spread over the workers and its module fixture built by each. This writes the same
    suffix where pytest 9.2 keeps the id; where xdist's suffix took effect it does nothing.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER") or not config.getvalue("loadgroup"):
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:                          # pytest before 9.2: xdist's own suffix works
        return
    for item in items:
        groups = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                         for mark in item.iter_markers("xdist_group")})
        suffix = "@" + "_".join(groups)
        if groups and not item.nodeid.endswith(suffix):
            item._id = NodeId.parse(item.nodeid + suffix)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tfds")
    write_stored_dataset(path)
    return path
