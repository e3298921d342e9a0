"""Parser pieces the subcommands share: the subcommand's own parser and the options several take."""

from __future__ import annotations

import argparse
from typing import Callable

SOURCE_HELP = ("checkpoint file, Hugging Face folder, or Hugging Face model id ORG/NAME[@REVISION] "
               "(fetched into the hub cache; HF_HUB_OFFLINE=1 reads only the cache)")


def add_command(subparsers, name: str, run: Callable[[argparse.Namespace], int], doc: str, *,
                epilog: str | None = None, accepts_config: bool = False) -> argparse.ArgumentParser:
    """Add subcommand ``name``, which runs ``run(args)`` (an exit code); return its parser.

    ``doc``: the subcommand module's docstring, ``"``mmae-jax NAME``: HELP.\\n\\nDESCRIPTION"``:
    HELP is its line in ``mmae-jax --help``, DESCRIPTION the text of its own ``--help``.
    ``accepts_config``: it reads an experiment config (``--config``, mmae_jax/cli/__init__.py).
    """
    prefix = f"``mmae-jax {name}``: "
    summary, _, description = (doc or prefix).strip().partition("\n\n")    # no docstrings under python -OO
    if not summary.startswith(prefix.strip()):
        raise ValueError(f"the docstring of subcommand {name} must start with {prefix!r}")
    parser = subparsers.add_parser(name, help=summary[len(prefix):].rstrip(".") or None, description=description or None,
                                   epilog=epilog)
    parser.set_defaults(func=run, accepts_config=accepts_config)
    return parser


def add_source(parser: argparse.ArgumentParser) -> None:
    """``--source``: the PyTorch / Hugging Face checkpoint to read (convert, compare)."""
    parser.add_argument("--source", required=True, help=SOURCE_HELP)


def add_checkpoint(parser: argparse.ArgumentParser, help: str) -> None:
    """``--checkpoint``: the model directory to read (export, forward, predict)."""
    parser.add_argument("--checkpoint", required=True, help=help)
