"""Per-chip memory of a compiled step, and the compiler's out-of-memory message in one line.

On TPU the compiler is the judge: a program that does not fit fails to compile with
``RESOURCE_EXHAUSTED`` (the TPU compiler fills HBM up to its limit, about 15.75G of a v5e
chip's 16 GiB, so ``temp`` is not a footprint). On GPU nothing fails at compile time: the step
fits when its peak (arguments + outputs - donated + temporaries) is within the share of the
GPU's memory that JAX's allocator takes (``XLA_PYTHON_CLIENT_MEM_FRACTION``, 0.75 unless set).
"""

from __future__ import annotations

import dataclasses
import os
import re

from mmae_jax.errors import UserError

GPU_DEFAULT_MEM_FRACTION = 0.75
_SIZE = r"([\d.]+\s*[KMGT]?i?B?)"


@dataclasses.dataclass(frozen=True)
class MemoryUse:
    """Bytes per chip of one compiled program."""

    arguments: int
    outputs: int
    aliased: int        # outputs written into donated arguments
    temporaries: int
    peak: int

    @classmethod
    def of(cls, compiled) -> MemoryUse:
        stats = compiled.memory_analysis()
        peak = getattr(stats, "peak_memory_in_bytes", 0) or (
            stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes
            + stats.temp_size_in_bytes)
        return cls(stats.argument_size_in_bytes, stats.output_size_in_bytes, stats.alias_size_in_bytes,
                   stats.temp_size_in_bytes, int(peak))


def gpu_memory_fraction() -> float:
    """The share of a GPU's memory JAX's allocator takes (``XLA_PYTHON_CLIENT_MEM_FRACTION``)."""
    return float(os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION", GPU_DEFAULT_MEM_FRACTION))


def usable_bytes(platform: str, hbm_bytes: int) -> int:
    """What one chip's program may use: all of its HBM on TPU (the compiler checks), JAX's share on GPU."""
    return int(hbm_bytes * (gpu_memory_fraction() if platform == "cuda" else 1.0))


class OutOfMemory(UserError):
    """The step does not fit one chip: what it needs, what the chip has, its largest allocation."""

    def __init__(self, needed: str, available: str, largest: str | None, fix: str = ""):
        what = f"the step does not fit: it needs {needed} per chip, {available} available"
        if largest:
            what += f"; largest allocation: {largest}"
        super().__init__(what, fix)
        self.needed, self.available, self.largest = needed, available, largest


def out_of_memory(message: str, fix: str = "") -> OutOfMemory | None:
    """The compiler's ``RESOURCE_EXHAUSTED`` message as an ``OutOfMemory``, or None for another error.

    Reads both of the TPU compiler's forms: ``... required for HLO temporaries (19.94G) exceeds
    available HBM (15.75G)`` and ``Used 16.53G of 15.75G hbm ... Largest program allocations in
    hbm: 1. Size: 1008.00M ... Operator: op_name="..." ... Shape: ...``.
    """
    if "RESOURCE_EXHAUSTED" not in message:
        return None
    needed = available = "?"
    if match := re.search(rf"required for HLO temporaries \({_SIZE}\) exceeds available HBM \({_SIZE}\)", message):
        needed, available = match.group(1), match.group(2)
    elif match := re.search(rf"Used {_SIZE} of {_SIZE} hbm", message):
        needed, available = match.group(1), match.group(2)
    return OutOfMemory(needed, available, _largest_allocation(message), fix)


def _largest_allocation(message: str) -> str | None:
    """``"1008.00M f32[...] from <op name> (<source line>)"`` of the first listed allocation, or None."""
    _, found, listing = message.partition("Largest program allocations")
    if not found:
        return None
    size = re.search(rf"Size:\s*{_SIZE}", listing)
    if size is None:
        return None
    entry = listing[size.start():].split("=====")[0]
    parts = [size.group(1)]
    if shape := re.search(r"Shape:\s*(\S+)", entry):
        parts.append(re.sub(r"\{.*", "", shape.group(1)))
    if op := re.search(r'op_name="([^"]+)"', entry):
        parts.append(f"from {op.group(1)}")
    if source := re.search(r'source_file="?([^"\s]+)"?\s+source_line=(\d+)', entry):
        parts.append(f"({source.group(1).rsplit('/', 1)[-1]}:{source.group(2)})")
    return " ".join(parts)
