"""Time the training step that ``mmae-jax train`` runs, on this machine's devices.

The step is the one ``mmae_jax.train.assembly.assemble`` builds for the config (the same that
``train`` runs and ``mmae-jax plan`` compiles for a target): model, optimiser, mesh, shardings,
dtype, remat, the attention kernel chosen for these devices, donation. Its state is created
already sharded (random initial weights); the batch is random uint8 clips placed like the
training pipeline's. Prints one table: clips/s, step time, MFU (the model's FLOPs, 3 forward
passes per step, against the chips' dense bf16 peak where known) and peak device memory.

    python benchmarks/assembled_step.py --config ravdess:variant=base,recipe=videomae \\
        --config.model.dtype=bfloat16 --per-device-batch 8
    # CPU smoke run:
    .venv/bin/python benchmarks/assembled_step.py --config demo --config.data.num_frames=4 \\
        --config.data.image_size=32 --per-device-batch 2 --steps 2 --warmup 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np

from common import markdown_table  # noqa: E402
from mmae_jax.cli.runtime import load_config
from mmae_jax.model.info import analytic_forward_flops
from mmae_jax.plan.chips import CHIPS
from mmae_jax.plan.compile import num_classes
from mmae_jax.train.assembly import assemble
from mmae_jax.train.steps import create_train_state, init_model_parts

# Substrings of jax's device_kind -> the chip table's key.
DEVICE_KINDS = (("H100", "h100"), ("H200", "h100"), ("A100", "a100"), ("TPU v5 lite", "v5e"),
                ("TPU v5", "v5p"), ("TPU v4", "v4"))


def peak_flops(device) -> float | None:
    for fragment, key in DEVICE_KINDS:
        if fragment in device.device_kind:
            return CHIPS[key].peak_flops
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-device-batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args, config_argv = parser.parse_known_args()
    config = load_config(config_argv)
    devices = jax.devices()
    with config.unlocked():
        config.batch_size = args.per_device_batch * len(devices)
    classes = num_classes(config)
    asm = assemble(config, devices, num_classes=classes, steps_per_epoch=100)
    parts = init_model_parts(asm.spec.model_class, asm.built_cfg, asm.trainable_filter, config.seed,
                             dict(asm.param_shardings, rest=jax.tree.map(lambda _: None, asm.abstract.rest)))
    state = create_train_state(parts, asm.state_shardings, asm.tx)
    rng = np.random.default_rng(0)
    batch = {name: jax.device_put(rng.integers(0, 256 if name == "video" else classes, spec.shape,
                                                dtype=np.uint8 if name == "video" else np.int32), spec.sharding)
             for name, spec in asm.abstract_batch.items()}

    started = time.perf_counter()
    state, metrics = asm.train_step(state, batch)
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - started
    times = []
    for step in range(args.warmup + args.steps):
        started = time.perf_counter()
        state, metrics = asm.train_step(state, batch)
        jax.block_until_ready(metrics)
        if step >= args.warmup:
            times.append(time.perf_counter() - started)
    step_s = statistics.median(times)
    flops = 3 * analytic_forward_flops(asm.built_cfg) * config.batch_size
    peak = peak_flops(devices[0])
    mfu = f"{100 * flops / (step_s * peak * len(devices)):.1f}%" if peak else "-"
    stats = devices[0].memory_stats() or {}
    memory = f"{stats['peak_bytes_in_use'] / 2 ** 30:.2f} GiB" if "peak_bytes_in_use" in stats else "-"
    print(f"Training step as `train` runs it ({len(devices)} x {devices[0].device_kind}; attention "
          f"{asm.attention}, dtype {asm.built_cfg.dtype}, remat {asm.built_cfg.remat_policy}):")
    print(markdown_table(
        ["variant", "batch", "compile s", "step ms (median)", "clips/s", "MFU", "peak memory / device", "loss"],
        [[asm.built_cfg.variant, config.batch_size, f"{compile_s:.1f}", f"{1e3 * step_s:.1f}",
          f"{config.batch_size / step_s:.1f}", mfu, memory, f"{float(metrics['loss']):.4f}"]]))


if __name__ == "__main__":
    main()
