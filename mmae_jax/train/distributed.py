"""Start-up of a run: multi-host initialisation and keeping TensorFlow off the accelerators."""

from __future__ import annotations

import logging
import sys
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


DEFAULT_TIMEOUT_S = 300


def _wait_for_coordinator(address: str, timeout_s: int) -> None:
    """Until ``host:port`` accepts a connection; UserError after ``timeout_s`` seconds.

    JAX aborts the process (no Python exception) when the coordinator does not answer in
    time, so the processes other than 0 first wait for it here, where giving up is one line.
    """
    import socket
    import time

    from mmae_jax.errors import UserError

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
    import jax

    from mmae_jax.errors import UserError

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
