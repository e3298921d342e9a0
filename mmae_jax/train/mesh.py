"""One device mesh from config, and the sharding rules for parameters and batches.

Axes are ``('slice', 'data', 'fsdp')``. ``slice`` spans the slices of a multi-slice TPU pod
(connected by the data-centre network, DCN; size 1 elsewhere), ``data`` and ``fsdp`` the chips
of one slice (ICI), as MaxText's hybrid mesh. Batches are split over all three axes; a
parameter (or optimiser-state tensor) of at least ``min_shard_bytes`` bytes is split over
``fsdp`` along its largest dimension that ``fsdp`` divides, everything else is replicated
(big_vision's rule): across slices only gradients are reduced. The rule looks at shapes and
dtypes only, so Adam's moments get the same layout as their float32 parameters.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import numpy as np
from jax.experimental import mesh_utils, multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXES = ("slice", "data", "fsdp")


def create_mesh(data: int = -1, fsdp: int = 1, slices: int = 1, devices: Sequence | None = None) -> Mesh:
    """A ``(slice, data, fsdp)`` mesh over ``devices`` (default: all of JAX's devices); ``-1`` for
    ``data`` takes what the other axes leave. With ``slices > 1`` the devices' ``slice_index``
    decides which chips share a slice."""
    devices = list(jax.devices() if devices is None else devices)
    if slices < 1 or len(devices) % slices:
        raise ValueError(f"mesh slices={slices} does not divide the {len(devices)} devices")
    per_slice = len(devices) // slices
    if data == -1:
        if per_slice % fsdp:
            raise ValueError(f"fsdp={fsdp} does not divide the {per_slice} devices of a slice")
        data = per_slice // fsdp
    if slices * data * fsdp != len(devices):
        raise ValueError(f"mesh slices={slices} x data={data} x fsdp={fsdp} needs {slices * data * fsdp} "
                         f"devices, but {len(devices)} are visible")
    if slices > 1:
        grid = mesh_utils.create_hybrid_device_mesh((1, data, fsdp), (slices, 1, 1), devices)
    else:
        grid = mesh_utils.create_device_mesh((1, data, fsdp), devices)
    # Auto axes: XLA's sharding propagation places activations; inputs, state and the block
    # outputs (model/attention.py: constrain_to_batch) are pinned.
    return Mesh(grid, DATA_AXES, axis_types=(jax.sharding.AxisType.Auto,) * len(DATA_AXES))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over every device of the mesh."""
    return NamedSharding(mesh, P(DATA_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def to_host(array) -> np.ndarray:
    """The full global array on this host (gathered across processes when needed)."""
    if getattr(array, "is_fully_addressable", True):
        return np.asarray(array)
    return np.asarray(multihost_utils.process_allgather(array, tiled=True))


def tensor_sharding(shape: tuple[int, ...], dtype, mesh: Mesh, min_shard_bytes: int) -> NamedSharding:
    """The ``fsdp`` rule for one tensor of ``shape`` and ``dtype``."""
    fsdp = mesh.shape["fsdp"]
    if fsdp == 1 or not shape or int(np.prod(shape)) * np.dtype(dtype).itemsize < min_shard_bytes:
        return replicated(mesh)
    candidates = [axis for axis in np.argsort(shape)[::-1] if shape[axis] % fsdp == 0]
    if not candidates:
        return replicated(mesh)
    spec = [None] * len(shape)
    spec[int(candidates[0])] = "fsdp"
    return NamedSharding(mesh, P(*spec))


def tree_shardings(tree, mesh: Mesh, min_shard_bytes: int):
    """Shardings for every array (or ShapeDtypeStruct) leaf of ``tree`` (``min_shard_bytes``:
    the config's ``mesh.min_shard_bytes``, its one setting)."""
    return jax.tree.map(lambda leaf: tensor_sharding(tuple(leaf.shape), leaf.dtype, mesh, min_shard_bytes),
                        tree)


def traced_on(mesh: Mesh, fn):
    """``fn`` traced inside ``mesh``'s abstract mesh, so that the model's per-device kernels and
    batch constraints (model/attention.py) see the mesh the step is compiled for."""
    @functools.wraps(fn)
    def on_mesh(*args):
        with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            return fn(*args)
    return on_mesh
