"""``mmae-jax convert``: convert an official VideoMAE .pth, a Hugging Face VideoMAE folder or model id.

Reads official fine-tuned or pre-training checkpoints (.pth/.pt/.bin/.safetensors) and Hugging Face
VideoMAE folders or model ids, checks every tensor against the model and writes OUTPUT/config.json +
OUTPUT/params (orbax). Nothing is written if anything does not fit.
"""

from __future__ import annotations

import argparse
import sys

from mmae_jax.cli.arguments import add_command, add_source


def register(subparsers) -> None:
    parser = add_command(subparsers, "convert", run, __doc__)
    add_source(parser)
    parser.add_argument("--output", required=True, help="new model directory")
    parser.add_argument("--variant", help="tiny/small/base/large/huge; default: read from the checkpoint")
    parser.add_argument("--num-classes", type=int,
                        help="classes of the head; another number than the checkpoint's gives a new head")
    parser.add_argument("--keep-decoder", action="store_true",
                        help="from a pre-training checkpoint, keep the decoder (writes a pretrainer)")
    parser.add_argument("--frames", type=int, help="input frames (default: 16 or the Hugging Face config's)")
    parser.add_argument("--size", type=int, help="input height = width (default: 224 or the Hugging Face config's)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow a full unpickle of a .pth that needs more than tensors (runs its code!)")


def run(args: argparse.Namespace) -> int:
    from mmae_jax.convert.converter import convert_checkpoint
    from mmae_jax.convert.torch_loading import CheckpointError

    try:
        result = convert_checkpoint(args.source, args.output, trust_pickle=args.trust_pickle,
                                    variant=args.variant, num_classes=args.num_classes,
                                    keep_decoder=args.keep_decoder, num_frames=args.frames, img_size=args.size)
    except (CheckpointError, FileExistsError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(result.summary())
    print(f"wrote {args.output}")
    return 0
