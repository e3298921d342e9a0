"""``mmae-jax export``: write a trained model for PyTorch / Hugging Face (the inverse of convert).

Writes the official VideoMAE state-dict layout (modeling_finetune.py / modeling_pretrain.py names)
as a .pth (pytorch, needs the [torch] extra) or .safetensors file, whose model reads
[B, C, T, H, W] clips, or a transformers VideoMAEForVideoClassification / VideoMAEForPreTraining
folder (huggingface) that AutoModelForVideoClassification and AutoImageProcessor load as it is:
config.json (id2label from the class names, the LayerNorm epsilons), model.safetensors,
preprocessor_config.json (the normalisation of training) and a README.md model card (usage, the
[B, T, C, H, W] input and its value range, results, license, training config).
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
