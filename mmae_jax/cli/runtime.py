"""Arguments and start-up shared by the subcommands that train or evaluate."""

from __future__ import annotations

import argparse
import logging

from absl import flags
from ml_collections import config_flags


def add_distributed_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("multi-host (leave out on one host; detected on TPU pods and SLURM)")
    group.add_argument("--coordinator-address", help="host:port of process 0")
    group.add_argument("--num-processes", type=int)
    group.add_argument("--process-id", type=int)


def start(args: argparse.Namespace) -> None:
    """Logging, TensorFlow kept off accelerators, ``jax.distributed`` when several hosts."""
    from mmae_jax.train.distributed import hide_accelerators_from_tensorflow, initialize

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    hide_accelerators_from_tensorflow()
    initialize(args.coordinator_address, args.num_processes, args.process_id)


def load_config(config_argv: list[str]):
    """Parse ``--config FILE[:ARG]`` and any ``--config.x=y`` overrides (typos fail: locked config)."""
    flag_values = flags.FlagValues()
    argv = ["mmae-jax", *config_argv]
    # sys_argv: the overrides come from these arguments, not from sys.argv (in-process calls).
    config_flags.DEFINE_config_file("config", None, "experiment config file", flag_values=flag_values,
                                    lock_config=True, sys_argv=argv)
    flag_values(argv)
    if flag_values.config is None:
        raise SystemExit("--config FILE[:ARG] is required")
    return flag_values.config
