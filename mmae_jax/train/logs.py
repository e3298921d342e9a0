"""What a run writes besides checkpoints and plots (mmae_jax/train/plots.py): metric logs,
written by process 0 only (a JSONL file and TensorBoard event files: scalars, the run's
hyper-parameters with its test metrics, and pictures such as the confusion matrix), and the
console's progress (``Progress``: a bar on a terminal, one plain line per logged step in a file)."""

from __future__ import annotations

import contextlib
import json
import math
import sys
from pathlib import Path

import jax
import matplotlib.image
import numpy as np
from tqdm import tqdm

from mmae_jax.train.workdir import flatten_tree


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
        pixels = matplotlib.image.imread(str(png))[..., :3]                        # [H, W, 3] floats in [0, 1]
        self._tb.add_image(tag, (pixels * 255).round().astype(np.uint8), step, dataformats="HWC")

    def close(self) -> None:
        if self.active:
            self._jsonl.close()
            self._tb.close()


def write_test_summary(workdir: str | Path, step: int, config: dict, results: dict, images: dict[str, Path]) -> None:
    """TensorBoard's record of a finished classification run: the test WAR / UAR (last epoch and
    at the best validation epoch) as scalars and against the config in HPARAMS, and ``images``
    (``{tag: PNG file}``: the confusion matrices)."""
    writer = MetricWriter(workdir)
    metrics = {}
    for prefix, report in (("test", results["test"]),
                           ("test_at_best_validation", (results.get("test_at_best_validation") or {}).get("test"))):
        if report:
            writer.write(step, {"war": report["war"], "uar": report["uar"]}, prefix)
            metrics.update({f"{prefix}/war": report["war"], f"{prefix}/uar": report["uar"]})
    writer.write_hparams(config, metrics)
    for tag, png in images.items():
        writer.write_image(tag, png, step)
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


class Progress:
    """The console's view of a run's steps (process 0; ``active=False`` elsewhere shows nothing).

    A tqdm bar on stderr when stderr is a terminal (tqdm's ``disable=None``), its postfix the
    last logged loss and clips/s; one plain line per logged step (``step_line``) on stdout when
    stdout is not a terminal or no bar is shown, so ``mmae-jax train ... > run.log`` (with or
    without ``2>&1``) reads as one line a step, never bar redraws.
    """

    def __init__(self, total: int, initial: int, desc: str, *, active: bool = True):
        self.total = total
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True,
                        disable=None if active else True)
        self.lines = active and (self.bar.disable or not sys.stdout.isatty())
        self.active = active

    def write(self, text: str) -> None:
        """A line of its own (the run's start-up summary), above the bar when there is one."""
        if not self.active:
            return
        if self.bar.disable:
            print(text, flush=True)
        else:
            tqdm.write(text)

    def update(self, steps: int = 1) -> None:
        self.bar.update(steps)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """The metrics logged at ``step`` (``loss``, ``lr``, ``clips_per_s`` and the task's)."""
        self.bar.set_postfix(loss=f"{metrics['loss']:.4f}", clips_s=f"{metrics['clips_per_s']:.1f}")
        if self.lines:
            print(step_line(step, self.total, metrics), flush=True)

    def close(self) -> None:
        self.bar.close()


def step_line(step: int, total: int, metrics: dict[str, float]) -> str:
    """``step 3/5  loss 2.0725  accuracy 31.25  grad_norm 3.156  lr 5.00e-04  23.4 clips/s``:
    the loss first, then the task's metrics, the learning rate and the rate."""
    rest = {k: v for k, v in metrics.items() if k not in ("loss", "lr", "clips_per_s")}
    fields = [f"step {step}/{total}", f"loss {metrics['loss']:.4f}",
              *(f"{name} {value:.4g}" for name, value in rest.items())]
    if "lr" in metrics:
        fields.append(f"lr {metrics['lr']:.2e}")
    if "clips_per_s" in metrics:
        fields.append(f"{metrics['clips_per_s']:.1f} clips/s")
    return "  ".join(fields)
