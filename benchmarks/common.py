"""Shared helpers of the benchmark scripts: core pinning, interleaved timing, tables, machine info.

Imports neither jax nor torch, so a script can pin its cores before either starts threads.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import time
from typing import Callable, Sequence

VERSIONED_PACKAGES = ("jax", "jaxlib", "flax", "optax", "torch", "numpy", "tensorflow-cpu",
                      "tensorflow-datasets")


def pin_cores(count: int | None) -> list[int]:
    """Restrict this process (and every thread it starts later) to its first ``count`` cores.

    XLA's CPU thread pool and PyTorch's OpenMP pool both size themselves from the cores
    the process may run on, so pinning before the first computation gives both frameworks
    the same cores. ``None`` keeps all allowed cores. Returns the cores in use.
    """
    allowed = sorted(os.sched_getaffinity(0))
    if count is None:
        return allowed
    if not 1 <= count <= len(allowed):
        raise ValueError(f"--threads must lie in 1..{len(allowed)} (cores this process may use), got {count}")
    os.sched_setaffinity(0, allowed[:count])
    return allowed[:count]


def time_interleaved(steps: dict[str, Callable[[], None]], warmup: int, repeats: int,
                     ) -> dict[str, list[float]]:
    """Run every step ``warmup + repeats`` times, round-robin; seconds of the timed calls per name.

    The order within a round is reversed every other round, so a slow patch of a shared
    machine hits every contender alike. Each callable must return only when its work is
    finished (synchronised). The first ``warmup`` rounds are not kept.
    """
    names = list(steps)
    timed: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(warmup + repeats):
        for name in names if round_index % 2 == 0 else reversed(names):
            start = time.perf_counter()
            steps[name]()
            if round_index >= warmup:
                timed[name].append(time.perf_counter() - start)
    return timed


def median_rate(seconds: Sequence[float], items: int) -> float:
    """Items per second of the median call."""
    return items / statistics.median(seconds)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table, columns padded to their widest cell."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *map(line, rows)])


def parse_markdown_table(text: str) -> tuple[list[str], list[list[str]]]:
    """The first markdown table in ``text``: (header, rows of cells), surrounding spaces removed."""
    lines = [line.strip() for line in text.splitlines()]
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None:
        raise ValueError("no markdown table in the text")
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip("|").split("|")])
    return table[0], table[2:]


def cpu_model() -> str:
    """The processor's model name, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions(names: Sequence[str] = VERSIONED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (packages not installed are left out)."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def machine_lines() -> list[str]:
    """Markdown bullet lines describing the machine and the software versions."""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    versions = ", ".join(f"{name} {version}" for name, version in package_versions().items())
    return [f"- CPU: {cpu_model()}, {os.cpu_count()} cores in the machine, "
            f"{len(os.sched_getaffinity(0))} allowed to this process",
            f"- load average (1, 5, 15 min) at start: {load}",
            f"- OS: {platform.platform()}",
            f"- versions: {versions}"]
