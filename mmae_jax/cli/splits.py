"""``mmae-jax splits``: write the train / validation / test membership of a protocol as CSV files.

One CSV per split (and per fold of kfold / hicmae): clip id, label, speaker and a content hash of
the stored example, sorted by clip id, plus SHA256SUMS. The printed hash (sha256 of SHA256SUMS) is
the one sweep and kfold summaries name.
"""

from __future__ import annotations

import argparse

from mmae_jax.cli.arguments import add_command


def register(subparsers) -> None:
    parser = add_command(subparsers, "splits", run, __doc__, accepts_config=True)
    parser.add_argument("--out", required=True, help="folder for the files")


def run(args: argparse.Namespace) -> int:
    from mmae_jax.cli.runtime import load_config
    from mmae_jax.data.split_files import write_split_files

    config = load_config(args.config_argv)
    digest = write_split_files(config.data, args.out)
    print(f"{config.data.dataset} protocol {config.data.protocol}: split files in {args.out}, sha256 {digest}")
    return 0
