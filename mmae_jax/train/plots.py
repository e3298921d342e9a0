"""PNG plots of a run: the confusion matrix and the training curves."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_confusion(matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: str | Path,
                   title: str) -> None:
    """Row-normalised confusion matrix with counts in the cells."""
    counts = np.asarray(matrix)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 1.0 + 0.6 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(rates, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for (row, col), count in np.ndenumerate(counts):
        ax.text(col, row, str(count), ha="center", va="center",
                color="white" if rates[row, col] > 0.5 else "black", fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_training_curves(records: list[dict], path: str | Path) -> None:
    """Training loss over steps, and validation WAR/UAR over steps."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.5))
    train = [r for r in records if r.get("split") == "train" and "loss" in r]
    loss_ax.plot([r["step"] for r in train], [r["loss"] for r in train])
    loss_ax.set_xlabel("step")
    loss_ax.set_ylabel("training loss")
    val = [r for r in records if r.get("split") == "validation"]
    for key in ("war", "uar"):
        acc_ax.plot([r["step"] for r in val], [r[key] for r in val], marker="o", label=key.upper())
    acc_ax.set_xlabel("step")
    acc_ax.set_ylabel("validation %")
    acc_ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
