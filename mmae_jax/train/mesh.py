"""One device mesh from config, and the sharding rules for parameters and batches.

Axes are ``('data', 'fsdp')``. Batches are split over both axes; a parameter (or
optimiser-state tensor) of at least ``min_shard_bytes`` bytes is split over ``fsdp`` along its
largest dimension that ``fsdp`` divides, everything else is replicated (big_vision's rule). The
rule looks at shapes and dtypes only, so Adam's moments get the same layout as their
float32 parameters.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXES = ("data", "fsdp")


def create_mesh(data: int = -1, fsdp: int = 1) -> Mesh:
    """A ``(data, fsdp)`` mesh over all devices; ``-1`` takes what the other axis leaves."""
    devices = jax.devices()
    if data == -1:
        if len(devices) % fsdp:
            raise ValueError(f"fsdp={fsdp} does not divide the {len(devices)} devices")
        data = len(devices) // fsdp
    if data * fsdp != len(devices):
        raise ValueError(f"mesh data={data} x fsdp={fsdp} needs {data * fsdp} devices, "
                         f"but {len(devices)} are visible")
    # Auto axes: XLA's sharding propagation places activations; only inputs and state are pinned.
    return jax.make_mesh((data, fsdp), DATA_AXES, devices=devices,
                         axis_types=(jax.sharding.AxisType.Auto,) * len(DATA_AXES))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over every device of the mesh."""
    return NamedSharding(mesh, P(DATA_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


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
