"""A run's plots: each built as a matplotlib ``Figure`` from plain data (``*_figure``, what the
tests inspect) and written as PNG (for a look) and PDF (for a paper) by ``save_figure``.

- ``confusion_figure``: a test confusion matrix, titled with the model it scores;
  ``reported_confusions`` picks the ones the results table reports (last epoch, and the
  best-validation epoch when that is another model): ``confusion_test.png`` and
  ``confusion_test_at_best_validation.png`` of a run.
- ``training_curves_figure``: training and validation loss, the learning rate, and validation
  WAR / UAR over steps (integer step ticks; a series of one logged step is drawn as a point).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

FORMATS = (".png", ".pdf")


def save_figure(fig: Figure, path: str | Path) -> list[Path]:
    """``fig`` as ``path`` with each suffix of ``FORMATS``; returns the files written."""
    paths = [Path(path).with_suffix(suffix) for suffix in FORMATS]
    for target in paths:
        fig.savefig(target, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def confusion_figure(matrix: Sequence[Sequence[int]], class_names: Sequence[str], title: str, *,
                     war: float | None = None, uar: float | None = None) -> Figure:
    """Row-normalised confusion matrix ``[K, K]`` (true x predicted) with counts in the cells;
    ``title`` names the run and the model (dataset, strategy, fold, split, which epoch), WAR /
    UAR go below it."""
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
    return fig


def plot_confusion(matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: str | Path,
                   title: str, *, war: float | None = None, uar: float | None = None) -> list[Path]:
    """``confusion_figure`` written as ``path`` (PNG and PDF)."""
    return save_figure(confusion_figure(matrix, class_names, title, war=war, uar=uar), path)


def reported_confusions(results: dict) -> list[tuple[str, str, dict]]:
    """``(results key, which model, report)`` of each test confusion matrix the results table of
    a classification run reports; ``report`` holds ``confusion_matrix``, ``war`` and ``uar``.

    ``test``: the last epoch's model. ``test_at_best_validation``: the best-validation epoch's
    model, when that is an earlier step (else the last epoch's entry says it is also the
    best-validation one).
    """
    steps, test = results["steps"], results["test"]
    best = results.get("test_at_best_validation")
    last = f"test, last epoch (step {steps})"
    if not best:
        return [("test", last, test)]
    if best["step"] == steps:
        return [("test", f"{last} = best validation (epoch {best['epoch']})", test)]
    return [("test", last, test),
            ("test_at_best_validation", f"test, best validation (epoch {best['epoch']}, step {best['step']})",
             dict(best["test"], confusion_matrix=best["test_confusion_matrix"]))]


def _series(ax, rows: list[dict], key: str, **style) -> None:
    """``key`` of ``rows`` over their steps; a series of one point is drawn with a marker."""
    rows = [row for row in rows if key in row]
    if not rows:
        return
    if len(rows) == 1:
        style.setdefault("marker", "o")
    ax.plot([row["step"] for row in rows], [row[key] for row in rows], **style)


def training_curves_figure(records: list[dict], title: str = "") -> Figure:
    """Three panels over steps from ``metrics.jsonl`` rows (``{"step", "split", ...}``): training
    loss with validation loss beside it (dots), the learning rate, and validation WAR (dots,
    solid) / UAR (hollow squares, dashed). One step axis, whole-number ticks."""
    fig, (loss_ax, lr_ax, acc_ax) = plt.subplots(1, 3, figsize=(14, 3.8), sharex=True)
    train = [r for r in records if r.get("split") == "train"]
    val = [r for r in records if r.get("split") == "validation"]
    _series(loss_ax, train, "loss", label="training")
    _series(loss_ax, val, "loss", marker="o", label="validation")
    loss_ax.set_ylabel("cross-entropy loss")
    loss_ax.set_title("training and validation loss", fontsize=9)
    _series(lr_ax, train, "lr", color="tab:green")
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_title("learning rate", fontsize=9)
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    for key, marker, style, size in (("war", "o", "-", 5), ("uar", "s", "--", 9)):   # hollow squares: both show
        _series(acc_ax, val, key, marker=marker, linestyle=style, markersize=size,
                markerfacecolor="none" if key == "uar" else None, label=key.upper())
    acc_ax.set_ylabel("validation %")
    acc_ax.set_title("validation WAR / UAR", fontsize=9)
    if not val:
        acc_ax.text(0.5, 0.5, "no validation split", ha="center", va="center", transform=acc_ax.transAxes)
    steps = [r["step"] for r in train + val]
    if steps and max(steps) - min(steps) < 2:       # a step or two: room for whole-number ticks
        loss_ax.set_xlim(min(steps) - 1, max(steps) + 1)
    for ax in (loss_ax, lr_ax, acc_ax):
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_training_curves(records: list[dict], path: str | Path, title: str = "") -> list[Path]:
    """``training_curves_figure`` written as ``path`` (PNG and PDF)."""
    return save_figure(training_curves_figure(records, title), path)
