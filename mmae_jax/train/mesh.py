"""The devices of a run: multi-host start-up, one device mesh from config, the sharding rules
for parameters and batches, and a summary of what the run is running on.

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
import logging
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Sequence

import jax
import numpy as np
from jax.experimental import mesh_utils, multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from mmae_jax.errors import UserError

log = logging.getLogger(__name__)

# Environment variables that mean "this process is one of several": set by TPU pod
# runtimes, SLURM, Open MPI and JAX's own launcher conventions.
_CLUSTER_ENV = ("JAX_COORDINATOR_ADDRESS", "TPU_WORKER_HOSTNAMES", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")


DEFAULT_TIMEOUT_S = 300


def _wait_for_coordinator(address: str, timeout_s: int) -> None:
    """Until ``host:port`` accepts a connection; UserError after ``timeout_s`` seconds.

    JAX aborts the process (no Python exception) when the coordinator does not answer in
    time, so the processes other than 0 first wait for it here, where giving up is one line.
    """
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host or "localhost", int(port)), timeout=2):
                return
        except OSError as error:
            if time.monotonic() >= deadline:
                raise UserError(f"no coordinator answered at {address} within {timeout_s} s "
                                f"({error.strerror or error})",
                                "start process 0 with the same --coordinator-address, or raise "
                                "--distributed-timeout") from error
            time.sleep(0.5)


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, timeout_s: int = DEFAULT_TIMEOUT_S) -> None:
    """``jax.distributed.initialize`` when several processes take part, else nothing.

    Explicit arguments win (a two-process CPU run on localhost, say); otherwise the
    cluster is detected from the environment (TPU pods, SLURM, MPI). On CPU the
    collectives go through gloo. Prints ``waiting for N processes at ADDRESS``; when they
    have not all joined within ``timeout_s`` seconds, raises a UserError saying so.
    """
    explicit = coordinator_address is not None
    multi_env = any(int(os.environ.get(k, "1") or 1) > 1 if k in ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")
                    else k in os.environ for k in _CLUSTER_ENV)
    if not (explicit or multi_env):
        return
    if jax.config.jax_platforms in (None, "", "cpu") or os.environ.get("JAX_PLATFORMS", "") == "cpu":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    where = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS", "the detected coordinator")
    print(f"waiting for {num_processes or 'the cluster'} processes at {where} (up to {timeout_s} s)",
          file=sys.stderr, flush=True)
    if coordinator_address and process_id:
        _wait_for_coordinator(coordinator_address, timeout_s)
    try:
        jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                                   process_id=process_id, initialization_timeout=timeout_s)
    except (RuntimeError, ValueError) as error:     # jaxlib's XlaRuntimeError is a RuntimeError
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise UserError(f"the {num_processes or ''} processes did not all join at {where} within {timeout_s} s "
                        f"({first})", "start every process with the same --coordinator-address and "
                        "--num-processes, or raise --distributed-timeout") from error
    log.info("process %d of %d, %d local / %d global devices", jax.process_index(), jax.process_count(),
             jax.local_device_count(), jax.device_count())


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
    # A mesh axis may take part of a physical torus axis (fsdp=2 on a 16x16 v5e: data=128 is 16x8).
    if slices > 1:
        grid = mesh_utils.create_hybrid_device_mesh((1, data, fsdp), (slices, 1, 1), devices,
                                                    allow_split_physical_axes=True)
    else:
        grid = mesh_utils.create_device_mesh((1, data, fsdp), devices, allow_split_physical_axes=True)
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


def runtime_summary(mesh: Mesh, global_batch_size: int) -> str:
    """One line: backend, device count and kind, process count, mesh shape, per-device batch."""
    devices = jax.devices()
    kinds = sorted({device.device_kind for device in devices})
    shape = ", ".join(f"{name}={size}" for name, size in mesh.shape.items() if name != "slice" or size > 1)
    return (f"backend {jax.default_backend()}: {len(devices)} x {'/'.join(kinds)}, "
            f"{jax.process_count()} process(es), mesh ({shape}), batch {global_batch_size} = "
            f"{global_batch_size // mesh.size} per device")


# Variables a Cloud TPU VM sets. Not any TPU_* name: JAX itself sets TPU_SKIP_MDS_QUERY on
# every machine when it starts.
TPU_VM_VARIABLES = ("TPU_NAME", "TPU_ACCELERATOR_TYPE", "TPU_WORKER_ID", "CLOUD_TPU_TASK_ID")


def accelerator_present() -> str | None:
    """The sign of a GPU or TPU on this machine (a device file, ``nvidia-smi``, TPU variables), or None."""
    if Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi"):
        return "an NVIDIA GPU (/dev/nvidia0 or nvidia-smi)"
    if Path("/dev/accel0").exists() or any(name in os.environ for name in TPU_VM_VARIABLES):
        return f"a TPU (/dev/accel0 or {'/'.join(TPU_VM_VARIABLES)})"
    return None


def accelerator_warning() -> str | None:
    """A warning when an accelerator is present but JAX runs on the CPU, else None."""
    present = accelerator_present()
    if present is None or jax.default_backend() != "cpu":
        return None
    return (f"this machine has {present} but JAX runs on the CPU: install the matching JAX "
            f"(pip install -e '.[cuda12]' or '.[tpu]', see README) or check JAX_PLATFORMS")
