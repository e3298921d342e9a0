"""Whether one host's input pipeline keeps up with the step: clips/s needed against clips/s available.

Needed: the clips of the host's chips per step, over the step time. Available: the measured
clips per CPU-second of one core for the config's fusion strategy (``benchmarks/pipeline.py``,
the ``make bench`` column of docs/data_pipeline.md: 16x224 clips, training augmentation on)
times the host's vCPUs (mmae_jax/plan/chips.py), as if every vCPU ran the pipeline.
"""

from __future__ import annotations

import dataclasses

# Clips per CPU-second of one core, by strategy: `make bench` on 2026-12-01 04:28 UTC
# (docs/data_pipeline.md, "Throughput (one core)").
CLIPS_PER_CORE_SECOND = {"fslf": 60.9, "ffls": 50.6, "ofos": 60.8, "rfas": 63.5, "face_only": 41.8,
                         "audio_only": 62.7, "cfas": 26.7, "sfas": 37.0}


@dataclasses.dataclass(frozen=True)
class InputRate:
    strategy: str
    clips_per_chip_step: int
    chips_per_host: int
    host_vcpus: int
    needed_per_host: float | None     # clips/s; None without a step time
    available_per_host: float
    keeps_up: bool | None


def input_rate(strategy: str, clips_per_chip_step: int, chips_per_host: int, host_vcpus: int,
               step_seconds: float | None) -> InputRate:
    """The input check for one host of ``chips_per_host`` chips at ``step_seconds`` per step."""
    per_core = CLIPS_PER_CORE_SECOND.get(strategy, min(CLIPS_PER_CORE_SECOND.values()))
    available = per_core * host_vcpus
    needed = clips_per_chip_step * chips_per_host / step_seconds if step_seconds else None
    return InputRate(strategy, clips_per_chip_step, chips_per_host, host_vcpus, needed, available,
                     None if needed is None else needed <= available)
