"""Where the time of one JAX training step goes, op by op, from a ``jax.profiler`` trace.

Builds the same step as ``train_step.py`` (forward, backward, AdamW; same variant, input,
batch, dtype and attention), runs it once under ``jax.profiler.trace``, reads the trace's
XPlane file and sums the device-side (XLA thunk) time of every compiled HLO instruction,
grouped by instruction kind, output shape and the JAX operation it came from (the HLO
``op_name``). Prints the largest groups as a table: the profile behind
``docs/benchmarks_analysis.md``. It reads XLA:CPU's thunk events, so it runs on the CPU
backend only; on a GPU, open a ``jax.profiler`` trace in XProf / TensorBoard instead.

    python benchmarks/profile_step.py --variant small --threads 1
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import markdown_table, pin_cores  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from mmae_jax.model import VARIANTS, VideoMAEConfig  # noqa: E402
from train_step import NUM_CLASSES, jax_contender  # noqa: E402

INSTRUCTION = re.compile(r"^\s+(?:ROOT )?%(\S+) = (\S+) (\w[\w-]*)\(")
OP_NAME = re.compile(r'op_name="(?:jit\([^)]*\)/)?([^"]*)"')


def instruction_table(hlo_text: str) -> dict[str, tuple[str, str, str]]:
    """Optimised HLO text -> {instruction name: (kind, output shape, JAX op name)}.

    Only the entry computation's instructions run as thunks; fused computations' bodies are
    listed too but never appear in the trace.
    """
    table = {}
    for line in hlo_text.splitlines():
        match = INSTRUCTION.match(line)
        if match:
            name, shape, opcode = match.groups()
            kind = re.sub(r"\.\d+$", "", name) if opcode == "fusion" else opcode
            op_name = OP_NAME.search(line)
            table[name] = (kind, re.sub(r"\{[^}]*\}", "", shape), op_name.group(1) if op_name else "")
    return table


def thunk_times(trace_dir: str) -> dict[str, tuple[float, int]]:
    """{event name: (total ms, count)} over every XLA thunk event of the trace's host plane."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    path = max(Path(trace_dir).rglob("*.xplane.pb"), key=os.path.getmtime)
    space = xplane_pb2.XSpace()
    space.ParseFromString(path.read_bytes())
    times: dict[str, list] = collections.defaultdict(lambda: [0.0, 0])
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_XLA"):
                continue
            for event in line.events:
                entry = times[names.get(event.metadata_id, "?")]
                entry[0] += event.duration_ps / 1e9
                entry[1] += 1
    return {name: (ms, count) for name, (ms, count) in times.items()}


def profile_rows(hlo_text: str, times: dict[str, tuple[float, int]], top: int):
    """Grouped rows ``(ms, calls, kind, shape, op)`` largest first, and the total thunk ms."""
    instructions = instruction_table(hlo_text)
    groups: dict[tuple, list] = collections.defaultdict(lambda: [0.0, 0])
    for name, (ms, count) in times.items():
        if name not in instructions:
            continue          # executor bookkeeping, not an HLO instruction
        group = groups[instructions[name]]
        group[0] += ms
        group[1] += count
    total = sum(ms for ms, _ in groups.values())
    rows = sorted(((ms, calls, *key) for key, (ms, calls) in groups.items()), reverse=True)
    return rows[:top], total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="small")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--attention", choices=("auto", "xla", "cudnn", "einsum"), default="auto")
    parser.add_argument("--threads", type=int, default=None, help="CPU cores (default: all allowed)")
    parser.add_argument("--top", type=int, default=15, help="table rows")
    args = parser.parse_args(argv)
    cores = len(pin_cores(args.threads))   # before XLA starts its thread pool
    if jax.default_backend() != "cpu":
        raise SystemExit(f"profile_step.py reads XLA:CPU thunk events; the backend here is "
                         f"{jax.default_backend()!r} (run with JAX_PLATFORMS=cpu, or use XProf)")
    cfg = VideoMAEConfig.from_variant(args.variant, num_classes=NUM_CLASSES, num_frames=args.frames,
                                      img_size=args.size, dtype=args.dtype, attention_impl=args.attention)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (args.batch, args.frames, args.size, args.size, 3), np.uint8)
    labels = rng.integers(0, NUM_CLASSES, args.batch).astype(np.int32)
    contender = jax_contender(cfg, pixels, labels)
    contender.step()                                  # one more untraced step
    with tempfile.TemporaryDirectory() as trace_dir:
        start = time.perf_counter()
        with jax.profiler.trace(trace_dir):
            contender.step()
        step_s = time.perf_counter() - start
        times = thunk_times(trace_dir)
    rows, total = profile_rows(contender.hlo_text, times, args.top)
    print(f"\nOne JAX training step of {args.variant} ({args.frames}x{args.size}, batch {args.batch}, "
          f"{args.dtype}, attention '{args.attention}') on {jax.default_backend()} with {cores} core(s): "
          f"{step_s * 1e3:.0f} ms traced, {total:.0f} ms in XLA thunks; the {len(rows)} largest groups")
    print(markdown_table(
        ("ms", "share %", "calls", "HLO kind", "shape", "JAX op"),
        [(f"{ms:.3g}", f"{100 * ms / total:.3g}", str(calls), kind, shape, op or "-")
         for ms, calls, kind, shape, op in rows]))


if __name__ == "__main__":
    main()
