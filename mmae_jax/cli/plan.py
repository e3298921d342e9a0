"""``mmae-jax plan``: compile a config's step ahead of time for a TPU pod or GPUs, and say what it costs.

Compiles, on this machine and without the hardware, exactly the step that `train` (or
`pretrain`, or evaluation) runs with the config on the named target: same model, optimiser,
mesh, shardings, dtype, remat, attention, global batch and donation. Prints per chip: memory
(arguments, outputs, peak) against the chip's HBM and whether it fits, FLOPs per step (compiled
and by the model's formula), the roofline step time and MFU from the chip's published peak
FLOP/s and HBM bandwidth, the collectives by kind with their bytes, the compile time, and
whether one host's input pipeline keeps up. Exit code 0 when the step compiles and fits, 1 when
it does not fit (one line naming the overflow and the largest allocation). Needs libtpu for TPU
targets and the CUDA plugin wheels for GPU targets (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from mmae_jax.cli.arguments import add_command
from mmae_jax.errors import ConfigError

EXIT_DOES_NOT_FIT = 1
EPILOG = """examples:
  mmae-jax plan --config ravdess:variant=base,recipe=videomae --topology v5e-256 --per-chip-batch 8 \\
      --config.model.dtype=bfloat16
  mmae-jax plan --config ravdess:variant=huge,recipe=videomae --topology v5p-128 --per-chip-batch auto
  mmae-jax plan --config pretrain_ravdess --topology 2xv5e-256 --json plan.json
  mmae-jax plan --config ravdess --topology h100x8 --task eval --per-chip-batch 32
topologies: v5e-4 ... v5e-256, v4-8 ... (TensorCores), v5p-8 ... (TensorCores), KxNAME for K slices,
libtpu's own v5e:16x16 / v4:2x2x2 / v5p:4x4x4, h100xN, a100xN (N GPUs, 8 per host)."""


def register(subparsers) -> None:
    parser = add_command(subparsers, "plan", run, __doc__, epilog=EPILOG, accepts_config=True)
    parser.add_argument("--topology", required=True, help="the target: v5e-256, v4-16, 2xv5e-256, h100x8, ...")
    parser.add_argument("--per-chip-batch", default="", metavar="N|auto",
                        help="clips per chip (default: the config's batch over the chips); auto: the largest "
                             "that fits, for each remat policy")
    parser.add_argument("--task", choices=("train", "pretrain", "eval"),
                        help="the step to compile (default: train for a classification config, pretrain for "
                             "a pre-training one)")
    parser.add_argument("--remat", default="", metavar="POLICY,...",
                        help="with --per-chip-batch auto: the remat policies to search, comma-separated "
                             "(default: every model.remat_policy)")
    parser.add_argument("--search-from", type=int, default=8, metavar="N",
                        help="with auto: the first batch tried; doubled while it fits, halved while not")
    parser.add_argument("--max-per-chip-batch", type=int, default=1024, help="with auto: the largest batch tried")
    parser.add_argument("--powers-of-two", action="store_true",
                        help="with auto: try powers of two only (fewer compiles; no bisection)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the plan as JSON to OUT")
    parser.add_argument("--hlo-out", type=Path, metavar="DIR", help="write each compiled program's HLO text to DIR")


def run(args: argparse.Namespace) -> int:
    from mmae_jax.cli.runtime import load_config, stderr_silenced

    # The CUDA plugin and libtpu write start-up lines to stderr when they load (shown with --verbose).
    quiet = contextlib.nullcontext() if args.verbose else stderr_silenced()
    with quiet:
        import jax

        from mmae_jax.plan.topology import parse_topology, target_devices

        # Compile-only devices need no backend: JAX stays on the CPU (no TPU / GPU start-up
        # attempt, and the CUDA plugin registers without looking for a driver).
        if not os.environ.get("JAX_PLATFORMS"):
            jax.config.update("jax_platforms", "cpu")
        jax.devices()           # loads the plugins now, quietly
        config = load_config(args.config_argv)
        target = parse_topology(args.topology)
        devices = target_devices(target)
    from mmae_jax.plan.compile import default_task

    task = args.task or default_task(config)
    if args.per_chip_batch == "auto":
        return _run_search(args, config, target, devices, task)
    plan = _plan(args, config, target, devices, task, _per_chip_batch(args.per_chip_batch, config, task, target))
    from mmae_jax.plan.report import format_plan

    print(format_plan(plan))
    _write_json(args.json, plan.to_json())
    return _verdict(plan)


def _per_chip_batch(text: str, config, task: str, target) -> int:
    """``--per-chip-batch N``, or the config's own global batch over the chips."""
    if text:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"--per-chip-batch {text!r} is not a number", "give N or auto") from None
    batch = config.eval.batch_size if task == "eval" else config.batch_size
    if batch % target.chips:
        raise ConfigError(f"the config's batch {batch} does not split over the {target.chips} chips of "
                          f"{target.name}", "give --per-chip-batch N (or auto)")
    return batch // target.chips


def _plan(args, config, target, devices, task: str, per_chip_batch: int, remat_policy: str | None = None):
    from mmae_jax.plan.step_plan import plan_step

    return plan_step(config, target, devices, task, per_chip_batch, remat_policy, hlo_out=args.hlo_out)


def _run_search(args, config, target, devices, task: str) -> int:
    from mmae_jax.model.config import REMAT_POLICIES
    from mmae_jax.plan.batch_search import largest_fitting
    from mmae_jax.plan.report import format_plan, format_search

    policies = [policy.strip() for policy in args.remat.split(",") if policy.strip()] or list(REMAT_POLICIES)
    if unknown := [policy for policy in policies if policy not in REMAT_POLICIES]:
        raise ConfigError(f"--remat {','.join(unknown)}: unknown remat policy", f"choose from {', '.join(REMAT_POLICIES)}")
    rows = []
    for policy in policies:
        best, first_failing, tried = largest_fitting(
            lambda batch: _plan(args, config, target, devices, task, batch, policy), lambda plan: plan.fits,
            start=args.search_from, limit=args.max_per_chip_batch, exact=not args.powers_of_two)
        rows.append(dict(remat_policy=policy, plan=best, does_not_fit=first_failing, tried=tried))
    print(format_search(rows) + "\n")
    fitting = [row["plan"] for row in rows if row["plan"] is not None]
    chosen = max(fitting, key=lambda plan: plan.clips_per_second) if fitting else None
    if chosen is not None:
        print(f"fastest: remat {chosen.remat_policy} at {chosen.per_chip_batch} per chip\n")
        print(format_plan(chosen))
    _write_json(args.json, dict(chosen.to_json() if chosen else {}, search=[
        dict(remat_policy=row["remat_policy"], largest_per_chip_batch=row["plan"] and row["plan"].per_chip_batch,
             tried=row["tried"], plan=row["plan"] and row["plan"].to_json(),
             does_not_fit=row["does_not_fit"] and row["does_not_fit"].out_of_memory) for row in rows]))
    if chosen is None:
        first = rows[0]["does_not_fit"]
        print(f"error: not even 1 clip per chip fits with any remat policy; "
              f"{first.out_of_memory if first else ''}", file=sys.stderr)
        return EXIT_DOES_NOT_FIT
    return 0


def _write_json(path: Path | None, payload: dict) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


def _verdict(plan) -> int:
    """0 when the step fits; else one ``error:`` line on stderr and exit code 1."""
    if plan.fits:
        return 0
    from mmae_jax.plan.report import gib

    reason = plan.out_of_memory or (f"the step does not fit: peak {gib(plan.memory.peak)} per chip, "
                                    f"{gib(plan.usable_bytes)} usable")
    print(f"error: {reason}", file=sys.stderr)
    return EXIT_DOES_NOT_FIT
