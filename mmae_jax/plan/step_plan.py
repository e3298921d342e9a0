"""One plan: the step of a config compiled for a target at one per-chip batch, and what it costs.

``plan_step`` compiles (``compile.py``) and reads the result: per-chip memory against the
chip's HBM, FLOPs per step (compiled, and the model's own count), the roofline step time and
MFU, the collectives by kind, the compile time, and whether one host's input pipeline keeps
up. A step that does not fit gives a plan with ``fits=False`` and the compiler's reason.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import ml_collections

from mmae_jax.model.info import analytic_forward_flops, analytic_pretrain_forward_flops
from mmae_jax.plan.hlo_text import collectives, custom_calls
from mmae_jax.plan.compile import compile_step, step_config
from mmae_jax.plan.input_rate import InputRate, input_rate
from mmae_jax.plan.memory import MemoryUse, OutOfMemory, usable_bytes
from mmae_jax.plan.roofline import Roofline, cost_figures, roofline
from mmae_jax.plan.topology import Target

# Forward passes' worth of FLOPs in one step: forward + backward (twice the forward) when training.
PASSES = {"train": 3, "pretrain": 3, "eval": 1}


@dataclasses.dataclass
class StepPlan:
    """Everything ``plan`` reports about one compiled step (per chip unless the name says otherwise)."""

    target: str
    chip: str
    chips: int
    slices: int
    hosts: int
    mesh: dict[str, int]
    task: str
    variant: str
    frames: int
    image_size: int
    dtype: str
    attention: str
    remat_policy: str
    per_chip_batch: int
    global_batch: int
    hbm_bytes: int
    usable_bytes: int
    fits: bool
    compile_seconds: float
    memory: MemoryUse | None = None
    out_of_memory: str | None = None          # the compiler's reason, when it does not fit
    flops_per_step_compiled: float | None = None   # all chips
    flops_per_step_model: float | None = None      # all chips
    roofline: Roofline | None = None
    collectives: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    custom_calls: dict[str, int] = dataclasses.field(default_factory=dict)   # kernels XLA's count omits
    input: InputRate | None = None

    @property
    def clips_per_second(self) -> float | None:
        """Clips per second of the whole target at the roofline step time."""
        return self.global_batch / self.roofline.step_seconds if self.roofline else None

    def to_json(self) -> dict:
        return dict(dataclasses.asdict(self), clips_per_second=self.clips_per_second)


def model_flops_per_clip(model_cfg, task: str) -> float:
    """The model's own FLOPs for one clip in one step of ``task`` (formulas of mmae_jax/model/info.py)."""
    forward = analytic_pretrain_forward_flops(model_cfg) if task == "pretrain" else analytic_forward_flops(model_cfg)
    return PASSES[task] * forward


def plan_step(config: ml_collections.ConfigDict, target: Target, devices: list, task: str, per_chip_batch: int,
              remat_policy: str | None = None, hlo_out: Path | None = None) -> StepPlan:
    """Compile ``task``'s step of ``config`` for ``devices`` (of ``target``) at ``per_chip_batch``."""
    config = step_config(config, task, target.chips, target.slices, per_chip_batch, remat_policy)
    chip = target.chip
    hosts = len({device.process_index for device in devices})
    base = dict(target=target.name, chip=chip.name, chips=target.chips, slices=target.slices, hosts=hosts,
                task=task, variant=config.model.variant, frames=config.data.num_frames,
                image_size=config.data.image_size, dtype=config.model.dtype,
                remat_policy=config.model.remat_policy, per_chip_batch=per_chip_batch,
                global_batch=per_chip_batch * target.chips, hbm_bytes=chip.hbm_bytes,
                usable_bytes=usable_bytes(chip.platform, chip.hbm_bytes))
    started = time.perf_counter()
    try:
        step = compile_step(config, devices, task)
    except OutOfMemory as error:
        return StepPlan(**base, mesh={}, attention="", fits=False,
                        compile_seconds=time.perf_counter() - started, out_of_memory=error.what)
    assembly, compiled = step.assembly, step.compiled
    text = compiled.as_text()
    if hlo_out is not None:
        hlo_out.mkdir(parents=True, exist_ok=True)
        name = f"{task}_step.{target.name.replace(':', '_')}.{config.model.remat_policy}.b{per_chip_batch}.hlo.txt"
        (hlo_out / name).write_text(text)
    memory = MemoryUse.of(compiled)
    per_chip_flops, bytes_accessed, no_cost = cost_figures(compiled, assembly.built_cfg.scan_blocks)
    model_per_chip = model_flops_per_clip(assembly.built_cfg, task) * per_chip_batch
    line = roofline(chip, per_chip_flops, bytes_accessed, model_per_chip, no_cost)
    return StepPlan(
        **base, mesh=dict(assembly.mesh.shape), attention=assembly.built_cfg.attention_impl,
        fits=memory.peak <= base["usable_bytes"] or chip.platform == "tpu", compile_seconds=step.seconds,
        memory=memory, flops_per_step_compiled=None if per_chip_flops is None else per_chip_flops * target.chips,
        flops_per_step_model=model_per_chip * target.chips, roofline=line, collectives=collectives(text),
        custom_calls=custom_calls(text),
        input=input_rate(config.data.strategy, per_chip_batch, chip.chips_per_host, chip.host_vcpus,
                         line.step_seconds))
