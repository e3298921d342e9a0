"""Plots of a run, each written as PNG (for a look) and PDF (for a paper): the confusion
matrix and the training curves."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

FORMATS = (".png", ".pdf")


def save_figure(fig, path: str | Path) -> list[Path]:
    """``fig`` as ``path`` with each suffix of ``FORMATS``; returns the files written."""
    paths = [Path(path).with_suffix(suffix) for suffix in FORMATS]
    for target in paths:
        fig.savefig(target, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def plot_confusion(matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: str | Path,
                   title: str, *, war: float | None = None, uar: float | None = None) -> list[Path]:
    """Row-normalised confusion matrix ``[K, K]`` (true x predicted) with counts in the cells;
    ``title`` names the run (dataset, strategy, fold, split), WAR / UAR go below it."""
    counts = np.asarray(matrix)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 1.0 + 0.6 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1.8, size + 0.4))
    image = ax.imshow(rates, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    scores = [f"{label} {value:.1f}%" for label, value in (("WAR", war), ("UAR", uar)) if value is not None]
    ax.set_title(title + ("\n" + ", ".join(scores) if scores else ""), fontsize=9)
    for (row, col), count in np.ndenumerate(counts):
        ax.text(col, row, str(count), ha="center", va="center",
                color="white" if rates[row, col] > 0.5 else "black", fontsize=8)
    colorbar = fig.colorbar(image, ax=ax, fraction=0.046)
    colorbar.set_label("share of the true class (recall on the diagonal)")
    return save_figure(fig, path)


def plot_training_curves(records: list[dict], path: str | Path, title: str = "") -> list[Path]:
    """Training loss over steps, and validation WAR (dots, solid) / UAR (hollow squares, dashed)."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    train = [r for r in records if r.get("split") == "train" and "loss" in r]
    loss_ax.plot([r["step"] for r in train], [r["loss"] for r in train])
    loss_ax.set_xlabel("step")
    loss_ax.set_ylabel("training loss")
    loss_ax.set_title("training loss", fontsize=9)
    val = [r for r in records if r.get("split") == "validation"]
    for key, marker, style, size in (("war", "o", "-", 5), ("uar", "s", "--", 9)):   # hollow squares: both show
        acc_ax.plot([r["step"] for r in val], [r[key] for r in val], marker=marker, linestyle=style,
                    markersize=size, markerfacecolor="none" if key == "uar" else None, label=key.upper())
    acc_ax.set_xlabel("step")
    acc_ax.set_ylabel("validation %")
    acc_ax.set_title("validation WAR / UAR", fontsize=9)
    acc_ax.legend()
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
