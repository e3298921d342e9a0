"""What a run is running on: one summary at start, and a warning when JAX misses an accelerator."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import jax
from jax.sharding import Mesh


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
