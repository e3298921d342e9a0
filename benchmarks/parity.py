"""PyTorch vs converted JAX VideoMAE on random weights: max abs / rel difference per family.

For each variant, random-weight checkpoints of the three families are written to a
temporary folder (official fine-tuned .pth, official pre-training .pth, Hugging Face
folder) and each is measured with the same code as ``mmae-jax compare``.

    python benchmarks/parity.py --variants small base [--batch 1] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
import transformers

from mmae_jax.convert import torch_reference as reference
from mmae_jax.convert.parity import compare_checkpoint
from mmae_jax.convert.torch_loading import load_checkpoint
from mmae_jax.model.config import VideoMAEConfig


def write_checkpoints(folder: Path, variant: str, seed: int) -> dict[str, Path]:
    """Random-weight checkpoints of each family for ``variant`` at 16x224."""
    cfg = VideoMAEConfig.from_variant(variant, num_classes=7)
    paths = dict(official_finetune=folder / f"{variant}_finetune.pth",
                 official_pretrain=folder / f"{variant}_pretrain.pth", huggingface=folder / f"{variant}_hf")
    torch.save({"model": reference.randomize_parameters(reference.VisionTransformer(cfg), seed).state_dict()},
               paths["official_finetune"])
    torch.save(reference.randomize_parameters(reference.PretrainVisionTransformer(cfg), seed).state_dict(),
               paths["official_pretrain"])
    hf_config = transformers.VideoMAEConfig(hidden_size=cfg.embed_dim, num_hidden_layers=cfg.depth,
                                            num_attention_heads=cfg.num_heads,
                                            intermediate_size=int(cfg.embed_dim * cfg.mlp_ratio), num_labels=7)
    hf_model = transformers.VideoMAEForVideoClassification(hf_config)
    reference.randomize_parameters(hf_model, seed).save_pretrained(paths["huggingface"])
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["small", "base"])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("| variant | family | output | shape | max abs diff | max rel diff |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for variant in args.variants:
            for family, path in write_checkpoints(Path(folder), variant, args.seed).items():
                _, rows = compare_checkpoint(load_checkpoint(path), batch=args.batch, seed=args.seed)
                for row in rows:
                    print(f"| {variant} | {family} | {row.output} | {list(row.shape)} | "
                          f"{row.max_abs:.2e} | {row.max_rel:.2e} |", flush=True)


if __name__ == "__main__":
    main()
