"""Run ``process_clip`` over many clips on all cores, keeping order, with a progress bar.

Workers are spawned (not forked: the parent has TensorFlow loaded) and import only the media
code. Each worker builds its face detector once. A bad clip comes back as its BadInputError,
never as a crash of the pool.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from typing import Iterable, Iterator, Sequence

import tqdm

from data_prep.media import clip, faces
from data_prep.media.errors import BadInputError

_worker_state: dict = {}


def _init_worker(spec: clip.ClipSpec) -> None:
    import cv2

    cv2.setNumThreads(1)
    _worker_state["spec"] = spec
    _worker_state["detector"] = faces.make_detector(spec.detector) if spec.framing == "face" else None


def _run_one(source: clip.ClipSource) -> clip.ClipArrays | BadInputError:
    try:
        return clip.process_clip(source, _worker_state["spec"], _worker_state["detector"])
    except BadInputError as error:
        return error


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def process_clips(sources: Sequence[clip.ClipSource], spec: clip.ClipSpec, num_workers: int | None = None,
                  description: str = "clips") -> Iterator[clip.ClipArrays | BadInputError]:
    """Yield, in input order, the arrays of each source or the BadInputError it raised.

    ``num_workers`` 1 runs in this process (no start-up cost); None uses every core.
    """
    num_workers = num_workers or default_workers()
    with contextlib.ExitStack() as stack:
        if num_workers == 1 or len(sources) <= 1:
            _init_worker(spec)
            results: Iterable = map(_run_one, sources)
        else:
            pool = multiprocessing.get_context("spawn").Pool(num_workers, initializer=_init_worker, initargs=(spec,))
            results = stack.enter_context(pool).imap(_run_one, sources, chunksize=1)
        yield from tqdm.tqdm(results, total=len(sources), desc=description, unit="clip", dynamic_ncols=True)
