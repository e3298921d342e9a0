"""Start-up of a run: multi-host initialisation and keeping TensorFlow off the accelerators."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

# Environment variables that mean "this process is one of several": set by TPU pod
# runtimes, SLURM, Open MPI and JAX's own launcher conventions.
_CLUSTER_ENV = ("JAX_COORDINATOR_ADDRESS", "TPU_WORKER_HOSTNAMES", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")


def hide_accelerators_from_tensorflow() -> None:
    """tf.data runs on the host; TF must never allocate GPU/TPU memory that JAX needs."""
    import tensorflow as tf
    tf.config.set_visible_devices([], "GPU")
    tf.config.set_visible_devices([], "TPU")


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
    """``jax.distributed.initialize`` when several processes take part, else nothing.

    Explicit arguments win (a two-process CPU run on localhost, say); otherwise the
    cluster is detected from the environment (TPU pods, SLURM, MPI). On CPU the
    collectives go through gloo.
    """
    import jax

    explicit = coordinator_address is not None
    multi_env = any(int(os.environ.get(k, "1") or 1) > 1 if k in ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")
                    else k in os.environ for k in _CLUSTER_ENV)
    if not (explicit or multi_env):
        return
    if jax.config.jax_platforms in (None, "", "cpu") or os.environ.get("JAX_PLATFORMS", "") == "cpu":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id)
    log.info("process %d of %d, %d local / %d global devices", jax.process_index(), jax.process_count(),
             jax.local_device_count(), jax.device_count())
