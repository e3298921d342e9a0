"""Metric logs written by process 0 only: a JSONL file and TensorBoard event files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax


class MetricWriter:
    """``write(step, {name: value}, prefix)`` -> one JSONL line and one TensorBoard scalar each."""

    def __init__(self, workdir: str | Path):
        self.active = jax.process_index() == 0
        if not self.active:
            return
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

    def close(self) -> None:
        if self.active:
            self._jsonl.close()
            self._tb.close()


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
