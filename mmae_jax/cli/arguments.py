"""Parser pieces the subcommands share: the subcommand's own parser and the options several take."""

from __future__ import annotations

import argparse
import sys
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


CHECKPOINT_HELP = ("a model folder (from convert, or a run's best_model/ / final_model/), or a training run "
                   "folder (a train / pretrain --workdir: --model picks its model)")
MODEL_HELP = ("with a run folder as --checkpoint: its best_model/, final_model/ or the train checkpoint of "
              "step STEP (default: best when the run has one, else final)")


def add_checkpoint(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--checkpoint`` and ``--model``: the trained model to read (mmae_jax/model/location.py)."""
    parser.add_argument("--checkpoint", required=required, metavar="PATH", help=CHECKPOINT_HELP)
    parser.add_argument("--model", metavar="best|final|STEP", help=MODEL_HELP, default=argparse.SUPPRESS)


def model_of(args: argparse.Namespace) -> str | None:
    """``--model`` (None when not given: its default is the run folder's, ``resolve_checkpoint``)."""
    return getattr(args, "model", None)


def checkpoint_of(args: argparse.Namespace):
    """The ``ModelChoice`` of ``--checkpoint`` / ``--model``; a run folder's choice is named on stderr."""
    from mmae_jax.model.location import resolve_checkpoint

    choice = resolve_checkpoint(args.checkpoint, model_of(args))
    if choice.from_run:
        print(f"model: {choice.label}", file=sys.stderr)
    return choice
