"""The ``mmae-jax`` command: one subcommand per module in this package.

Each subcommand module exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a callable taking the parsed arguments and returning an exit code. A parser
that sets ``accepts_config=True`` gets ``--config FILE_OR_NAME[:ARGS]``, ``--config.KEY=VALUE``
and ``--print-config`` (mmae_jax/cli/runtime.py); ``accepts_config="overrides"`` hands on the
``--config.KEY=VALUE`` arguments alone (``evaluate``); every parser gets ``--verbose``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mmae_jax.errors import EXIT_USER_ERROR, one_line_cause

# The modules under mmae_jax.cli that add subcommands, in the order of ``--help``
# (``train`` adds train, evaluate and pretrain; ``sweep`` adds kfold and sweep).
# ``build_parser`` imports each to add its parsers; the modules import JAX, TensorFlow, torch
# and the training code only inside the function that runs the command, so building the parser
# (``--help``) imports none of them and e.g. ``model-info`` never imports TensorFlow or torch.
SUBCOMMAND_MODULES = ("prepare", "model_info", "show_fusion", "convert", "forward", "compare", "train", "sweep",
                      "predict", "splits", "export", "plan")
# Commands that read or write TFDS data (``plan``: the dataset builder's class set): TensorFlow is started (quietly, off the accelerators)
# before they run.
TENSORFLOW_COMMANDS = {"prepare", "show-fusion", "train", "evaluate", "pretrain", "kfold", "sweep", "predict",
                       "splits", "plan"}


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions and epilogs as written, defaults shown after each option's help."""


class ArgumentParser(argparse.ArgumentParser):
    """A bad command line is one ``error:`` line naming the flag and where the help is, exit 2."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"error: {message} (see {self.prog} --help)\n")


def _version() -> str:
    from importlib import metadata
    try:
        return metadata.version("mmae_jax")
    except metadata.PackageNotFoundError:
        from mmae_jax import __version__
        return __version__


def build_parser() -> argparse.ArgumentParser:
    from mmae_jax.cli.runtime import add_config_arguments

    parser = ArgumentParser(prog="mmae-jax", description=__doc__ and __doc__.splitlines()[0], allow_abbrev=False,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"mmae-jax {_version()}")
    parser.add_argument("--verbose", action="store_true", help="show library log lines and warnings")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(f"mmae_jax.cli.{module_name}").register(subparsers)
    for subparser in subparsers.choices.values():
        subparser.formatter_class = HelpFormatter
        subparser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                               help="show library log lines (TensorFlow, absl, orbax) and warnings")
        if subparser.get_default("accepts_config") is True:
            add_config_arguments(subparser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. Subcommands that read an experiment config (``accepts_config``)
    receive the ``--config FILE_OR_NAME[:ARGS]`` and ``--config.KEY=VALUE`` arguments as ``config_argv``."""
    from mmae_jax.cli import runtime

    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if getattr(args, "accepts_config", False):
        args.config_argv = unknown
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    runtime.configure_logging(args.verbose)
    try:
        if getattr(args, "print_config", False):
            print(runtime.load_config(args.config_argv).to_json_best_effort(indent=2, sort_keys=True))
            return 0
        if args.command in TENSORFLOW_COMMANDS:
            runtime.start_tensorflow(args.verbose)
        return int(args.func(args) or 0)
    except Exception as error:  # expected failures: one line; anything else keeps its traceback
        cause = one_line_cause(error)
        if cause is None:
            raise
        print(f"error: {cause}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
