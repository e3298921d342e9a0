"""Run per-clip work on all cores, in input order, with a progress bar.

Workers come from a fork server that has imported only this module (not forked from the
parent, which usually has TensorFlow loaded, and without re-importing the parent's main module
as 'spawn' does), and each runs an initializer once (e.g. to build its face detector). A bad clip comes back as its
BadInputError, never as a crash of the pool.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from typing import Any, Callable, Iterable, Iterator, Sequence

import threadpoolctl
import tqdm

from mmae_jax.data_prep.media import clip, faces
from mmae_jax.data_prep.media.errors import BadInputError

_worker_state: dict = {}


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parallel_map(function: Callable[[Any], Any], items: Sequence[Any], num_workers: int | None = None,
                 initializer: Callable[..., None] | None = None, initargs: tuple = (),
                 description: str = "items") -> Iterator[Any]:
    """Yield ``function(item)`` for every item in order. ``function`` and ``initializer`` must be
    module-level functions. ``num_workers`` 1 runs in this process (BLAS limited to one thread
    while the generator runs); None uses every core."""
    num_workers = num_workers or default_workers()
    with contextlib.ExitStack() as stack:
        if num_workers == 1 or len(items) <= 1:
            stack.enter_context(threadpoolctl.threadpool_limits(1))
            if initializer is not None:
                initializer(*initargs)
            results: Iterable = map(function, items)
        else:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])  # workers start with the media code imported
            pool = context.Pool(min(num_workers, len(items)), _init_worker, (initializer, initargs))
            results = stack.enter_context(pool).imap(function, items, chunksize=1)
        # disable=None: a bar only when stderr is a terminal (no redraws in a log file).
        yield from tqdm.tqdm(results, total=len(items), desc=description, unit="clip", dynamic_ncols=True,
                             disable=None)


def _init_worker(initializer: Callable[..., None] | None, initargs: tuple) -> None:
    # One BLAS thread per worker: the pool already uses every core, and OpenBLAS threads
    # competing with it made the log-mel projection 20x slower.
    threadpoolctl.threadpool_limits(1)
    if initializer is not None:
        initializer(*initargs)


def _init_clip_worker(spec: clip.ClipSpec) -> None:
    import cv2

    cv2.setNumThreads(1)
    _worker_state["spec"] = spec
    _worker_state["detector"] = faces.make_detector(spec.detector) if spec.framing == "face" else None


def _process_one(source: clip.ClipSource) -> clip.ClipArrays | BadInputError:
    try:
        return clip.process_clip(source, _worker_state["spec"], _worker_state["detector"])
    except BadInputError as error:
        return error


def process_clips(sources: Sequence[clip.ClipSource], spec: clip.ClipSpec, num_workers: int | None = None,
                  description: str = "clips") -> Iterator[clip.ClipArrays | BadInputError]:
    """Yield, in input order, the arrays of each source or the BadInputError it raised."""
    return parallel_map(_process_one, sources, num_workers, _init_clip_worker, (spec,), description)
