"""What a run writes besides checkpoints: metric logs, written by process 0 only (a JSONL file
and TensorBoard event files: scalars, the run's hyper-parameters with its test metrics, and
pictures such as the confusion matrix), and plots, each written as PNG (for a look) and PDF (for
a paper): the confusion matrix and the training curves."""

from __future__ import annotations

import contextlib
import json
import math
import sys
from pathlib import Path
from typing import Sequence

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mmae_jax.train.workdir import flatten_tree  # noqa: E402


@contextlib.contextmanager
def _torch_hidden():
    """Within it, ``import torch`` fails unless torch is loaded already.

    tensorboardX imports torch when it is installed (to accept torch tensors, which the writers
    here never pass): 1.7 s and a few hundred MB in every training process of an environment with
    the ``[torch]`` extra. Afterwards torch imports as usual."""
    if "torch" in sys.modules:
        yield
        return
    sys.modules["torch"] = None
    try:
        yield
    finally:
        del sys.modules["torch"]


class MetricWriter:
    """``write(step, {name: value}, prefix)`` -> one JSONL line and one TensorBoard scalar each."""

    def __init__(self, workdir: str | Path):
        self.active = jax.process_index() == 0
        if not self.active:
            return
        with _torch_hidden():
            from tensorboardX import SummaryWriter
        self._jsonl = open(Path(workdir) / "metrics.jsonl", "a", encoding="utf-8")
        self._tb = SummaryWriter(str(Path(workdir) / "tensorboard"))

    def write(self, step: int, metrics: dict, prefix: str) -> None:
        if not self.active:
            return
        scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) or hasattr(v, "dtype")}
        self._jsonl.write(json.dumps({"step": int(step), "split": prefix, **scalars}) + "\n")
        self._jsonl.flush()
        for name, value in scalars.items():
            if math.isfinite(value):
                self._tb.add_scalar(f"{prefix}/{name}", value, step)

    def write_hparams(self, hparams: dict, metrics: dict[str, float]) -> None:
        """TensorBoard's HPARAMS tab: ``hparams`` (a nested config, flattened to dotted names) and
        the final ``metrics`` (e.g. ``{"test/war": 61.2}``), which are also written as scalars."""
        if not self.active:
            return
        with _torch_hidden():
            from tensorboardX.summary import hparams as hparams_summary

        flat = {key: value if isinstance(value, (bool, int, float, str)) else str(value)
                for key, value in flatten_tree(hparams).items()}
        writer = self._tb._get_file_writer()
        for summary in hparams_summary(flat, metrics):
            writer.add_summary(summary)

    def write_image(self, tag: str, png: str | Path, step: int) -> None:
        """A PNG file (a plot of the run) as a TensorBoard image."""
        if not self.active:
            return
        pixels = plt.imread(str(png))[..., :3]                        # [H, W, 3] floats in [0, 1]
        self._tb.add_image(tag, (pixels * 255).round().astype(np.uint8), step, dataformats="HWC")

    def close(self) -> None:
        if self.active:
            self._jsonl.close()
            self._tb.close()


def write_test_summary(workdir: str | Path, step: int, config: dict, results: dict, confusion_png: Path) -> None:
    """TensorBoard's record of a finished classification run: the test WAR / UAR (last epoch and
    at the best validation epoch) as scalars and against the config in HPARAMS, and the confusion image."""
    writer = MetricWriter(workdir)
    metrics = {}
    for prefix, report in (("test", results["test"]),
                           ("test_at_best_validation", (results.get("test_at_best_validation") or {}).get("test"))):
        if report:
            writer.write(step, {"war": report["war"], "uar": report["uar"]}, prefix)
            metrics.update({f"{prefix}/war": report["war"], f"{prefix}/uar": report["uar"]})
    writer.write_hparams(config, metrics)
    writer.write_image("test/confusion", confusion_png, step)
    writer.close()


def read_metrics(workdir: str | Path) -> list[dict]:
    path = Path(workdir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def drop_rows_after(workdir: str | Path, step: int) -> int:
    """Remove the ``metrics.jsonl`` rows of steps after ``step`` (a resumed run writes them again).

    Returns the number of rows removed; the file is replaced atomically.
    """
    path = Path(workdir) / "metrics.jsonl"
    if not path.exists():
        return 0
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line)["step"] <= step]
    if len(kept) < len(lines):
        partial = path.with_suffix(".jsonl.partial")
        partial.write_text("".join(line + "\n" for line in kept))
        partial.replace(path)
    return len(lines) - len(kept)


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
