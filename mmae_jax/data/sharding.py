"""Host batches -> global ``jax.Array`` batches sharded over the mesh's data axes."""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping, TypeVar

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

if TYPE_CHECKING:
    import tensorflow as tf


def batch_sharding(sharding: NamedSharding) -> NamedSharding:
    """The batch-axis part of ``sharding``: axis 0 as in ``sharding``, all others replicated.

    Serves arrays of any rank (videos [B, T, S, S, 3], labels [B]).
    """
    batch_axes = sharding.spec[0] if len(sharding.spec) else None
    return NamedSharding(sharding.mesh, PartitionSpec(batch_axes))


def host_batch_size(global_batch_size: int, sharding: NamedSharding) -> int:
    """This process's share of ``global_batch_size``; checks that it splits evenly."""
    batch = batch_sharding(sharding)
    shards = batch.mesh.shape[batch.spec[0]] if isinstance(batch.spec[0], str) else int(
        np.prod([batch.mesh.shape[axis] for axis in (batch.spec[0] or ())]))
    processes = jax.process_count()
    if global_batch_size % shards or global_batch_size % processes:
        raise ValueError(f"global_batch_size={global_batch_size} must be divisible by the "
                         f"{shards} batch shards of the mesh and the {processes} processes")
    return global_batch_size // processes


def to_global(host_batch: Mapping[str, np.ndarray], sharding: NamedSharding) -> dict:
    """Assembles each process's ``[B / P, ...]`` arrays into global ``[B, ...]`` jax.Arrays."""
    batch = batch_sharding(sharding)
    return {name: jax.make_array_from_process_local_data(batch, value)
            for name, value in host_batch.items()}


Batch = TypeVar("Batch")


def prefetch_to_device(batches: Iterable[Batch], size: int = 2) -> Iterator[Batch]:
    """Keeps ``size`` batches of ``batches`` (global ``jax.Array`` pytrees) placed ahead.

    Placing an array (``to_global``) only starts its copy to the devices, so taking the next
    batch from ``batches`` while the consumer's step runs overlaps the host's work and the
    transfer with the device's compute. ``size`` 0 yields each batch as it is made.
    """
    queue: collections.deque = collections.deque()
    for batch in batches:
        queue.append(batch)
        if len(queue) > size:
            yield queue.popleft()
    while queue:
        yield queue.popleft()


def place_batches(dataset: tf.data.Dataset, sharding: NamedSharding, device_prefetch: int = 2) -> Iterator[dict]:
    """Global batches of a dataset of host batches: each process's ``[B / P, ...]`` NumPy
    arrays assembled with ``to_global``, ``device_prefetch`` batches placed ahead of the
    consumer (``prefetch_to_device``; 0: placed when asked for)."""
    placed = (to_global(host_batch, sharding) for host_batch in dataset.as_numpy_iterator())
    yield from prefetch_to_device(placed, device_prefetch)
