"""Roofline step time and MFU of one compiled step on one chip.

The step takes at least as long as its arithmetic at the chip's peak and as its memory traffic
at the chip's HBM bandwidth; the larger bound is the roofline time. Both come from XLA's cost
analysis of the per-chip program (``flops``, ``bytes accessed``), which the TPU compiler gives
and the GPU compiler does not: there the time is a lower bound, the model's FLOPs at the
chip's peak (``bound="peak"``), and MFU is not known. The same holds for scanned blocks
(``model.scan_blocks``), whose loop body XLA's analysis counts once. XLA leaves out the FLOPs of custom calls
(the Pallas attention kernels) unless a kernel states them, so the compute bound takes the larger
of XLA's count and the model's formula. MFU is the model's own FLOPs
(``mmae_jax.model.info``: three forward passes per training step, forward and backward; one for
evaluation) over the time at the chip's peak: recomputation by remat counts in the compiled
FLOPs, not in the model's.
"""

from __future__ import annotations

import dataclasses

from mmae_jax.plan.chips import Chip


@dataclasses.dataclass(frozen=True)
class Roofline:
    """Per chip and step: ``compiled_flops`` and ``bytes_accessed`` from XLA, ``model_flops`` by formula."""

    compiled_flops: float | None
    bytes_accessed: float | None
    model_flops: float
    step_seconds: float
    bound: str                       # "compute", "HBM", or "peak" (no cost analysis: model FLOPs at peak)
    mfu: float | None
    no_cost: str = ""                # why there is no cost analysis (bound "peak")


NO_ANALYSIS = "the GPU compiler gives no cost analysis"
SCANNED = "XLA counts the loop body of scanned blocks (model.scan_blocks) once, not once per block"


def cost_figures(compiled, scanned_blocks: bool = False) -> tuple[float | None, float | None, str]:
    """``(flops, bytes accessed, "")`` of a compiled per-chip program, or ``(None, None, why)``
    when there is no analysis or it would be wrong: with ``scanned_blocks`` XLA counts the
    blocks' loop body once, so its figures are a fraction of the step's."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else None
    if not analysis or "flops" not in analysis:
        return None, None, NO_ANALYSIS
    if scanned_blocks:
        return None, None, SCANNED
    return float(analysis["flops"]), float(analysis.get("bytes accessed", 0.0)) or None, ""


def roofline(chip: Chip, compiled_flops: float | None, bytes_accessed: float | None,
             model_flops: float, no_cost: str = NO_ANALYSIS) -> Roofline:
    """The roofline of one chip's step from its compiled costs and the model's FLOPs (``no_cost``:
    why ``compiled_flops`` is None)."""
    if compiled_flops is None:
        return Roofline(None, None, model_flops, model_flops / chip.peak_flops, "peak", None, no_cost)
    compute = max(compiled_flops, model_flops) / chip.peak_flops
    memory = (bytes_accessed or 0.0) / chip.hbm_bandwidth
    seconds = max(compute, memory)
    return Roofline(compiled_flops, bytes_accessed, model_flops, seconds, "compute" if compute >= memory else "HBM",
                    model_flops / (seconds * chip.peak_flops) if seconds > 0 else None)
