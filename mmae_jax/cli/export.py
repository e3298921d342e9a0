"""``mmae-jax export``: an mmae_jax model -> PyTorch state dict, safetensors or a Hugging Face folder."""

from __future__ import annotations

import argparse

FORMATS = ("pytorch", "safetensors", "huggingface")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="write a trained model for PyTorch / Hugging Face (the inverse of convert)",
        description="Writes the official VideoMAE state-dict layout (modeling_finetune.py / "
                    "modeling_pretrain.py names) as a .pth (pytorch) or .safetensors file, or a "
                    "transformers VideoMAEForVideoClassification / VideoMAEForPreTraining folder "
                    "(huggingface: config.json with id2label from the class names, model.safetensors "
                    "and a README.md model card with the training config and results). "
                    "`mmae-jax convert` reads every output back to the same parameters.",
        epilog="example:\n  mmae-jax export --checkpoint workdirs/demo/run --format huggingface "
               "--output exported/demo_hf")
    parser.add_argument("--checkpoint", required=True,
                        help="model directory, or a training workdir (its final_model)")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--output", required=True, help="new file (pytorch, safetensors) or folder (huggingface)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mmae_jax.convert.export import export_model

    path = export_model(args.checkpoint, args.format, args.output)
    print(f"wrote {path}")
    return 0
