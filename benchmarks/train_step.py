"""One VideoMAE training step (forward, backward, AdamW update): JAX (ours) against PyTorch.

The contenders train the same classifier (variant, input, batch, dtype, cross-entropy
loss, AdamW with weight decay 0.05) on the same random clips:

- ``JAX``: ``mmae_jax.model.VideoMAEClassifier`` with ``optax.adamw`` under ``jax.jit``, the
  parameters and optimiser state donated; it reads uint8 pixels and normalises them inside
  the step (``normalize.to_model_input``), as training does;
- ``PyTorch eager``: the independent PyTorch VideoMAE with the official layout
  (``mmae_jax.convert.torch_reference.VisionTransformer``, written after VideoMAE's
  ``modeling_finetune.py``) with ``torch.optim.AdamW``, bfloat16 through ``torch.autocast``;
- ``torch.compile``: the same PyTorch model under ``torch.compile`` (left out, with the
  reason printed, where compilation fails).

Each contender is built and run once (compilation, timed apart), then all run round-robin,
``--warmup`` rounds discarded and the median of ``--steps`` rounds kept, so a busy patch of
a shared machine slows every contender alike. The table gives clips/s, the ratios
JAX / PyTorch and whether the goal (``--goal``, JAX at least that much faster than the
best PyTorch) is met; on a GPU also MFU (training = 3 x the forward FLOPs from XLA's cost
analysis, against the chip's dense peak) and memory per contender.

    .venv/bin/python benchmarks/train_step.py                      # CPU: tiny and small, 16x224
    python benchmarks/train_step.py --variant base --batch 8       # GPU: bfloat16, cuDNN attention
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from typing import Callable

# JAX must not take most of the GPU up front: PyTorch shares it in this process.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from flax import nnx  # noqa: E402

from common import markdown_table, median_rate, pin_cores, time_interleaved  # noqa: E402
from mmae_jax.convert.torch_reference import VisionTransformer  # noqa: E402
from mmae_jax.data.normalize import to_model_input  # noqa: E402
from mmae_jax.model import VARIANTS, VideoMAEClassifier, VideoMAEConfig  # noqa: E402
from mmae_jax.model.info import forward_flops  # noqa: E402

LEARNING_RATE = 1e-4
WEIGHT_DECAY = 0.05
NUM_CLASSES = 7
NORMALIZATION = "imagenet_mean_std0225"
GIB = 2.0 ** 30

# Dense bfloat16 peak per chip in TFLOP/s, by a substring of jax's device_kind (first match).
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0), ("H100", 989.4), ("H200", 989.4), ("GH200", 989.4),
    ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0), ("B200", 2250.0),
    ("TPU v6 lite", 918.0), ("TPU v5 lite", 197.0), ("TPU v5", 459.0), ("TPU v4", 275.0),
)


def peak_flops(device_kind: str, dtype: str) -> float | None:
    """The chip's dense peak in FLOP/s for ``dtype``, or None where the table has no entry."""
    if dtype != "bfloat16":
        return None
    return next((tflops * 1e12 for name, tflops in PEAK_BF16_TFLOPS if name in device_kind), None)


@dataclasses.dataclass
class Contender:
    """A ready training step: ``step()`` returns when the update has finished."""

    name: str
    step: Callable[[], None]
    setup_s: float                 # building it and its first step (compilation included)
    memory_bytes: float | None     # its own peak device memory, where it can be measured
    hlo_text: str | None = None    # JAX: the optimised HLO of the step (profile_step.py reads it)


# --- JAX ---------------------------------------------------------------------------------------
def jax_contender(cfg: VideoMAEConfig, pixels: np.ndarray, labels: np.ndarray) -> Contender:
    """``pixels [B, T, H, W, C]`` uint8, ``labels [B]`` int32."""
    start = time.perf_counter()
    model = VideoMAEClassifier(cfg, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params, rest = params.to_pure_dict(), rest.to_pure_dict()
    tx = optax.adamw(LEARNING_RATE, weight_decay=WEIGHT_DECAY)

    def train_step(state, pixels, labels):
        params, opt_state = state
        video = to_model_input(pixels, NORMALIZATION)

        def loss_fn(params):
            logits = nnx.merge(graphdef, params, rest)(video)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    state = (params, tx.init(params))
    video, labels = jax.device_put(pixels), jax.device_put(labels)
    compiled = jax.jit(train_step, donate_argnums=0).lower(state, video, labels).compile()
    memory = compiled.memory_analysis()
    memory_bytes = None if memory is None else float(
        memory.argument_size_in_bytes + memory.output_size_in_bytes - memory.alias_size_in_bytes
        + memory.temp_size_in_bytes)
    box = [state]

    def step() -> None:
        box[0], loss = compiled(box[0], video, labels)
        jax.block_until_ready((box[0], loss))

    step()
    return Contender("JAX", step, time.perf_counter() - start, memory_bytes, compiled.as_text())


# --- PyTorch -----------------------------------------------------------------------------------
def torch_contender(cfg: VideoMAEConfig, video: np.ndarray, labels: np.ndarray,
                    device: torch.device, compiled: bool) -> Contender:
    """The official-layout PyTorch model; inputs turned to PyTorch's ``[B, C, T, H, W]``."""
    start = time.perf_counter()
    on_gpu = device.type == "cuda"
    held_before = torch.cuda.memory_allocated(device) if on_gpu else 0
    torch.manual_seed(0)
    model = VisionTransformer(cfg).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    forward = torch.compile(model) if compiled else model
    x = torch.from_numpy(video).permute(0, 4, 1, 2, 3).contiguous().to(device)
    y = torch.from_numpy(labels).long().to(device)
    bfloat16 = cfg.dtype == "bfloat16"

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16):
            loss = F.cross_entropy(forward(x), y)
        loss.backward()
        optimizer.step()
        if on_gpu:
            torch.cuda.synchronize(device)

    if on_gpu:
        torch.cuda.reset_peak_memory_stats(device)
    step()
    memory_bytes = float(torch.cuda.max_memory_allocated(device) - held_before) if on_gpu else None
    return Contender("torch.compile" if compiled else "PyTorch eager", step,
                     time.perf_counter() - start, memory_bytes)


# --- one row of the table ----------------------------------------------------------------------
def measure_variant(args: argparse.Namespace, variant: str, names: list[str], device_kind: str,
                    torch_device: torch.device) -> tuple[list[str], list[str]]:
    """Build, warm up and time every contender on one variant: (table row, notes).

    A contender that fails to build (torch.compile) gets ``failed`` cells and a note.
    """
    cfg = VideoMAEConfig.from_variant(variant, num_classes=NUM_CLASSES, num_frames=args.frames,
                                      img_size=args.size, dtype=args.dtype,
                                      attention_impl=args.attention)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (args.batch, args.frames, args.size, args.size, 3), np.uint8)
    video = to_model_input(pixels, NORMALIZATION)       # PyTorch's input: normalised on the host
    labels = rng.integers(0, NUM_CLASSES, args.batch).astype(np.int32)

    contenders = [jax_contender(cfg, pixels, labels),
                  torch_contender(cfg, video, labels, torch_device, compiled=False)]
    notes = []
    if "torch.compile" in names:
        try:
            contenders.append(torch_contender(cfg, video, labels, torch_device, compiled=True))
        except Exception as error:  # torch.compile's failures have many types; the row goes on
            notes.append(f"{variant}: torch.compile failed ({type(error).__name__}: "
                         f"{str(error).splitlines()[0][:200]})")
    timed = time_interleaved({c.name: c.step for c in contenders}, args.warmup, args.steps)
    rates = {name: median_rate(seconds, args.batch) for name, seconds in timed.items()}
    memory = {c.name: c.memory_bytes for c in contenders}
    notes.append(f"{variant}: setup (building, compiling, first step): " + ", ".join(
        f"{c.name} {c.setup_s:.1f} s" for c in contenders))

    cell = lambda name, fmt: fmt(rates[name]) if name in rates else "failed"
    torch_names = names[1:]
    row = [variant, f"{args.frames}x{args.size}", str(args.batch), args.dtype]
    row += [cell(name, lambda rate: f"{rate:.3f}") for name in names]
    row += [cell(name, lambda rate: f"{rates['JAX'] / rate:.2f}") for name in torch_names]
    best_ratio = rates["JAX"] / max(rates[name] for name in torch_names if name in rates)
    row.append(f"{'met' if best_ratio >= args.goal else 'missed'} ({best_ratio:.2f})")
    peak = peak_flops(device_kind, args.dtype)
    if peak is not None:
        # FLOPs counted with the plain XLA attention: the cost analysis cannot see into cuDNN.
        clip_flops = 3 * forward_flops(cfg.replace(attention_impl="xla"))
        row += [cell(name, lambda rate: f"{100 * clip_flops * rate / peak:.1f}") for name in names]
    if torch_device.type == "cuda":
        row += [f"{memory[name] / GIB:.2f}" if memory.get(name) else "n/a" for name in names]
    return row, notes


def table_header(args: argparse.Namespace, names: list[str], device_kind: str,
                 torch_device: torch.device) -> list[str]:
    header = ["variant", "input", "batch", "dtype", *[f"{name} clips/s" for name in names]]
    header += [f"JAX/{name.split()[-1]}" for name in names[1:]]
    header.append(f"goal JAX/best PyTorch >= {args.goal}")
    if peak_flops(device_kind, args.dtype) is not None:
        header += [f"MFU % {name}" for name in names]
    if torch_device.type == "cuda":
        header += [f"GiB {name}" for name in names]
    return header


def devices() -> tuple[str, str, torch.device]:
    """(JAX platform, JAX device kind, the PyTorch device of the same kind)."""
    platform, kind = jax.devices()[0].platform, jax.devices()[0].device_kind
    if platform == "cpu":
        return platform, kind, torch.device("cpu")
    if platform == "gpu" and torch.cuda.is_available():
        return platform, kind, torch.device("cuda")
    raise SystemExit(f"JAX runs on {platform} ({kind}) but PyTorch has no such device here: "
                     "the comparison needs both on the same kind of chip")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", nargs="+", choices=sorted(VARIANTS),
                        help="default: tiny small on CPU, base large on a GPU")
    parser.add_argument("--batch", type=int, default=None, help="clips per step (default 2 on CPU, 8 on GPU)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default=None,
                        help="compute dtype (default float32 on CPU, bfloat16 on GPU)")
    parser.add_argument("--attention", choices=("auto", "xla", "cudnn", "einsum"), default=None,
                        help="JAX attention implementation (default einsum on CPU, cudnn on GPU)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=5, help="timed rounds; the median is kept")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds after the first step")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU cores for both frameworks (default: all this process may use)")
    parser.add_argument("--torch-compile", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--goal", type=float, default=None,
                        help="JAX / best PyTorch ratio to meet (default 1.0 on CPU, 1.3 on GPU)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        raise SystemExit("--steps must be at least 1 and --warmup at least 0")
    cores = pin_cores(args.threads)           # before either framework starts its thread pools
    torch.set_num_threads(len(cores))
    platform, device_kind, torch_device = devices()
    on_cpu = platform == "cpu"
    args.variant = args.variant or (["tiny", "small"] if on_cpu else ["base", "large"])
    args.batch = args.batch or (2 if on_cpu else 8)
    args.dtype = args.dtype or ("float32" if on_cpu else "bfloat16")
    args.attention = args.attention or ("einsum" if on_cpu else "cudnn")
    args.goal = args.goal or (1.0 if on_cpu else 1.3)

    names = ["JAX", "PyTorch eager"] + (["torch.compile"] if args.torch_compile else [])
    rows, notes = [], []
    for variant in args.variant:
        row, variant_notes = measure_variant(args, variant, names, device_kind, torch_device)
        rows.append(row)
        notes += variant_notes

    where = f"{len(cores)} CPU cores (pinned: {cores})" if on_cpu else device_kind
    print(f"\nTraining step (forward + backward + AdamW) on {where}; JAX attention '{args.attention}'; "
          f"median of {args.steps} interleaved rounds after {args.warmup} warm-up round(s)")
    print(markdown_table(table_header(args, names, device_kind, torch_device), rows))
    print()
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
