"""The ``mmae-jax`` command: one subcommand per module in this package.

Each subcommand module exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a callable taking the parsed arguments and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mmae_jax.errors import EXIT_USER_ERROR, one_line_cause

# Subcommand name -> module under mmae_jax.cli. Modules are imported only when listed
# here, so that e.g. ``model-info`` never imports TensorFlow or torch.
SUBCOMMANDS = {
    "prepare": "prepare",
    "model-info": "model_info",
    "show-fusion": "show_fusion",
    "convert": "convert", "forward": "forward", "compare": "compare",
    "train": "train",
    "evaluate": "train",
    "pretrain": "train",
    "kfold": "sweep",
    "sweep": "sweep",
    "predict": "predict",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmae-jax", description=__doc__.splitlines()[0], allow_abbrev=False)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in dict.fromkeys(SUBCOMMANDS.values()):
        importlib.import_module(f"mmae_jax.cli.{module_name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. Subcommands that read an experiment config (``accepts_config``)
    receive the ``--config FILE[:ARG]`` and ``--config.x=y`` arguments as ``config_argv``."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if getattr(args, "accepts_config", False):
        args.config_argv = unknown
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.func(args) or 0)
    except Exception as error:  # expected failures: one line; anything else keeps its traceback
        cause = one_line_cause(error)
        if cause is None:
            raise
        print(f"error: {cause}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
