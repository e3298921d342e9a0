"""``mmae-jax export``: write a trained model for PyTorch / Hugging Face (the inverse of convert).

Writes the official VideoMAE state-dict layout (modeling_finetune.py / modeling_pretrain.py names)
as a .pth (pytorch) or .safetensors file, or a transformers VideoMAEForVideoClassification /
VideoMAEForPreTraining folder (huggingface: config.json with id2label from the class names,
model.safetensors and a README.md model card with the training config and results).
`mmae-jax convert` reads every output back to the same parameters.
"""

from __future__ import annotations

import argparse

from mmae_jax.cli.arguments import add_checkpoint, add_command, checkpoint_of

FORMATS = ("pytorch", "safetensors", "huggingface")


def register(subparsers) -> None:
    parser = add_command(subparsers, "export", run, __doc__, epilog=(
        "example:\n  mmae-jax export --checkpoint workdirs/demo/run --format huggingface --output exported/demo_hf"))
    add_checkpoint(parser)
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--output", required=True, help="new file (pytorch, safetensors) or folder (huggingface)")


def run(args: argparse.Namespace) -> int:
    from mmae_jax.convert.export import export_model

    path = export_model(checkpoint_of(args), args.format, args.output)
    print(f"wrote {path}")
    return 0
