"""``plan``'s output: the lines it prints for a step plan, and the one-line verdict when it does not fit."""

from __future__ import annotations

from mmae_jax.plan.step_plan import StepPlan

GIB = 2 ** 30


def gib(value: float) -> str:
    """Bytes as GiB, or MiB / KiB when small."""
    for scale, unit in ((GIB, "GiB"), (2 ** 20, "MiB"), (2 ** 10, "KiB")):
        if value >= scale or unit == "KiB":
            return f"{value / scale:.2f} {unit}"
    return ""


def _count(value: float) -> str:
    """``1.23e15`` -> ``1.23 PFLOP``."""
    for scale, unit in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M")):
        if value >= scale:
            return f"{value / scale:.2f} {unit}FLOP"
    return f"{value:.0f} FLOP"


def format_plan(plan: StepPlan) -> str:
    """The plan as aligned ``name  value`` lines."""
    mesh = ", ".join(f"{axis}={size}" for axis, size in plan.mesh.items())
    rows = [
        ("target", f"{plan.target}: {plan.chips} x {plan.chip} ({plan.hosts} host(s), {plan.slices} slice(s))"),
        ("mesh", mesh or "-"),
        ("step", f"{plan.task}: ViT-{plan.variant} {plan.frames}x{plan.image_size}, {plan.dtype}, "
                 f"attention {plan.attention or '-'}, remat {plan.remat_policy}"),
        ("batch", f"{plan.per_chip_batch} per chip, {plan.global_batch} global"),
    ]
    if not plan.fits and plan.memory is None:
        rows.append(("memory", f"does not fit: {plan.out_of_memory}"))
    else:
        m = plan.memory
        verdict = "fits" if plan.fits else f"does not fit ({gib(plan.usable_bytes)} usable)"
        rows.append(("memory", f"arguments {gib(m.arguments)}, outputs {gib(m.outputs)} ({gib(m.aliased)} into "
                               f"donated arguments), temporaries {gib(m.temporaries)}, peak {gib(m.peak)} of "
                               f"{gib(plan.hbm_bytes)} HBM per chip: {verdict}"))
        compiled = "-" if plan.flops_per_step_compiled is None else _count(plan.flops_per_step_compiled)
        rows.append(("FLOPs per step", f"{compiled} compiled, {_count(plan.flops_per_step_model)} by the model's "
                                       f"formula (all chips)"))
        line = plan.roofline
        if line.bound == "peak":
            rows.append(("step time", f">= {line.step_seconds * 1e3:.3g} ms (the model's FLOPs at peak; "
                                      f"{line.no_cost}, so no roofline or MFU), "
                                      f"<= {plan.clips_per_second:,.0f} clips/s"))
        else:
            rows.append(("roofline", f"{line.step_seconds * 1e3:.3g} ms per step ({line.bound}-bound), MFU "
                                     f"{line.mfu:.1%}, {plan.clips_per_second:,.0f} clips/s"))
        rows.append(("collectives", ", ".join(f"{kind} {entry['count']} x, {gib(entry['bytes'])}"
                                              for kind, entry in plan.collectives.items()) + " per chip"
                     if plan.collectives else "none"))
        if plan.custom_calls:
            rows.append(("custom calls", ", ".join(f"{target} {count} x" for target, count in plan.custom_calls.items())
                         + " (FLOPs outside XLA's count: the compute bound uses the model's formula when larger)"))
        rate = plan.input
        rows.append(("input", f"{rate.needed_per_host:,.0f} clips/s needed per host ({rate.chips_per_host} chips), "
                              f"{rate.available_per_host:,.0f} available ({rate.host_vcpus} vCPUs x "
                              f"{rate.available_per_host / rate.host_vcpus:.1f} clips/s, {rate.strategy}): "
                              f"{'keeps up' if rate.keeps_up else 'does NOT keep up'}"))
    rows.append(("compile", f"{plan.compile_seconds:.1f} s on this machine"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def format_search(rows: list[dict]) -> str:
    """The per-remat-policy table of ``--per-chip-batch auto``."""
    lines = [f"{'remat':<14} {'per chip':>8} {'peak':>10} {'step ms':>8} {'MFU':>6} {'clips/s':>9}  batches tried"]
    for row in rows:
        plan: StepPlan | None = row["plan"]
        if plan is None:
            lines.append(f"{row['remat_policy']:<14} {'none fit':>8}  {' ':>35}  {row['tried']}")
            continue
        line = plan.roofline
        mfu = "-" if line.mfu is None else f"{line.mfu:.1%}"
        lines.append(f"{row['remat_policy']:<14} {plan.per_chip_batch:>8} {gib(plan.memory.peak):>10} "
                     f"{line.step_seconds * 1e3:>8.1f} {mfu:>6} {plan.clips_per_second:>9,.0f}  {row['tried']}")
    return "\n".join(lines)
