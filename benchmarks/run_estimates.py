"""Estimated time of the paper's runs from FLOPs: an estimate, not a measurement.

    python benchmarks/run_estimates.py [--utilisation 0.4]

For each dataset under the notebook protocol (``recipe=multimae_der``: 100 epochs, batch 16, a
frozen ViT-L), clips forwarded per run = 100 x (training steps x 16 + validation clips
[+ test clips, when a new best validation UAR triggers a test pass every epoch]). The
backbone is frozen, so a training clip costs one forward pass (the gradient stops at the
pooled tokens). FLOPs per clip come from XLA's cost analysis (``mmae-jax model-info``); time
= FLOPs / (accelerator peak x utilisation). Peaks are the vendors' dense bfloat16 figures.
Fine-tuning (``recipe=videomae``) costs about 3x per training clip (forward + backward).
"""

from __future__ import annotations

import argparse
import math

from mmae_jax.data_prep.protocols import notebook_splits, split_membership
from mmae_jax.model.config import VideoMAEConfig
from mmae_jax.model.info import forward_flops

# Clips per class as the builders label them (docs/data.md): RAVDESS 7 classes (calm merged
# into neutral), CREMA-D's 6 emotions, IEMOCAP's 4 classes with excited merged into happy.
CLASS_COUNTS = {"ravdess": [288, 192, 192, 192, 192, 192, 192],
                "crema_d": [1271, 1271, 1271, 1271, 1087, 1271],
                "iemocap": [1708, 1636, 1084, 1103]}
# Dense bfloat16 peak per host, TFLOP/s: (name, chips x per-chip peak).
HOSTS = (("1x H100 SXM", 989.0), ("TPU v4 host (4 chips)", 4 * 275.0), ("TPU v5e host (8 chips)", 8 * 197.0))
EPOCHS, BATCH = 100, 16


def split_sizes(counts: list[int]) -> dict[str, int]:
    labels = [label for label, count in enumerate(counts) for _ in range(count)]
    names = notebook_splits([f"clip{i:05d}" for i in range(len(labels))], labels, seed=0)
    return {split: int(split_membership(names, split).sum()) for split in ("train", "validation", "test")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utilisation", type=float, default=0.4, help="assumed fraction of the peak")
    args = parser.parse_args()
    tflop = forward_flops(VideoMAEConfig.from_variant("large", num_classes=7, freeze_backbone=True,
                                                      head_norm="fresh")) / 1e12
    print(f"ViT-L 16x224 forward: {tflop:.4f} TFLOP per clip (XLA cost analysis); "
          f"utilisation assumed {args.utilisation:.0%}\n")
    print("| dataset | train / val / test clips | clips forwarded per run | PFLOP | "
          + " | ".join(name for name, _ in HOSTS) + " |")
    print("|---|---|---|---|" + "---|" * len(HOSTS))
    for dataset, counts in CLASS_COUNTS.items():
        sizes = split_sizes(counts)
        per_epoch = math.ceil(sizes["train"] / BATCH) * BATCH + sizes["validation"]
        low, high = EPOCHS * per_epoch, EPOCHS * (per_epoch + sizes["test"])
        minutes = [f"{low * tflop / (peak * args.utilisation) / 60:.0f}-"
                   f"{high * tflop / (peak * args.utilisation) / 60:.0f} min" for _, peak in HOSTS]
        print(f"| {dataset} | {sizes['train']} / {sizes['validation']} / {sizes['test']} | "
              f"{low:,}-{high:,} | {low * tflop / 1e3:.0f}-{high * tflop / 1e3:.0f} | " + " | ".join(minutes) + " |")


if __name__ == "__main__":
    main()
