"""``mmae-jax compare``: run a checkpoint in PyTorch and converted in JAX; print the differences."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="PyTorch vs converted JAX outputs of one checkpoint (max abs / rel difference)",
        description="Builds the PyTorch model from the checkpoint (mmae_jax.convert.torch_reference for "
                    "official .pth files, transformers for Hugging Face folders), converts it in memory, "
                    "runs both in float32 on the same random input and prints one row per output.")
    parser.add_argument("--source", required=True,
                        help="checkpoint file, Hugging Face folder, or Hugging Face model id ORG/NAME[@REVISION] "
                             "(fetched into the hub cache; HF_HUB_OFFLINE=1 reads only the cache)")
    parser.add_argument("--variant", help="default: read from the checkpoint")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--trust-pickle", action="store_true", help="see `mmae-jax convert --help`")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mmae_jax.convert.parity import compare_checkpoint, format_table
    from mmae_jax.convert.torch_loading import CheckpointError, load_checkpoint, require_torch

    try:
        require_torch().set_num_threads(args.threads)
        checkpoint = load_checkpoint(args.source, trust_pickle=args.trust_pickle)
        result, rows = compare_checkpoint(checkpoint, batch=args.batch, seed=args.seed, variant=args.variant)
    except (CheckpointError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.source}: {result.family}, variant {result.cfg.variant}, input "
          f"[{args.batch}, {result.cfg.in_chans}, {result.cfg.num_frames}, {result.cfg.img_size}, "
          f"{result.cfg.img_size}], float32")
    print(format_table(rows))
    return 0
