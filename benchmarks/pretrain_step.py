"""Cost of one MAE pre-training step against one fine-tuning step, same variant, input and batch.

Both are JAX training steps (forward, backward, AdamW update with weight decay 0.05, under
``jax.jit`` with the state donated) on the same random clips:

- ``fine-tune``: ``VideoMAEClassifier`` on every token, cross-entropy;
- ``pre-train``: ``VideoMAEPretrainer.loss`` (tube masking at ``--mask-ratio``: the encoder
  reads the visible tokens only, the decoder every token), a fresh mask per step.

Each step is compiled once, then both run round-robin (``--warmup`` rounds discarded, the
median of ``--steps`` rounds kept). The table gives clips/s and the ratio pre-train /
fine-tune.

    .venv/bin/python benchmarks/pretrain_step.py                       # CPU: tiny and small, 16x224
    .venv/bin/python benchmarks/pretrain_step.py --variants tiny --size 64 --batch 8
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
import optax
from flax import nnx

from common import markdown_table, median_rate, pin_cores, time_interleaved
from mmae_jax.model import VideoMAEClassifier, VideoMAEConfig
from mmae_jax.model.masking import tube_mask
from mmae_jax.model.pretrain import VideoMAEPretrainer

NUM_CLASSES = 7


def compiled_step(model: nnx.Module, loss_fn, video: np.ndarray, labels: np.ndarray):
    """``(step, setup seconds)``: ``step()`` runs one donated AdamW step of ``loss_fn(model, video,
    labels, key)`` and waits for it."""
    start = time.perf_counter()
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params, rest = params.to_pure_dict(), rest.to_pure_dict()
    tx = optax.adamw(1e-4, weight_decay=0.05)

    def train_step(state, video, labels):
        params, opt_state, key = state
        key, step_key = jax.random.split(key)
        loss, grads = jax.value_and_grad(
            lambda p: loss_fn(nnx.merge(graphdef, p, rest), video, labels, step_key))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, key), loss

    state = (params, tx.init(params), jax.random.key(0))
    video, labels = jax.device_put(video), jax.device_put(labels)
    compiled = jax.jit(train_step, donate_argnums=0).lower(state, video, labels).compile()
    box = [state]

    def step() -> None:
        box[0], loss = compiled(box[0], video, labels)
        jax.block_until_ready((box[0], loss))

    step()
    return step, time.perf_counter() - start


def classification(model, video, labels, key):
    return optax.softmax_cross_entropy_with_integer_labels(model(video), labels).mean()


def reconstruction(model, video, labels, key):
    loss, _ = model.loss(video, key)
    return loss


def measure(args: argparse.Namespace, variant: str) -> tuple[list[str], str]:
    cfg = VideoMAEConfig.from_variant(variant, num_classes=NUM_CLASSES, num_frames=args.frames,
                                      img_size=args.size, mask_ratio=args.mask_ratio)
    rng = np.random.default_rng(0)
    video = rng.standard_normal((args.batch, args.frames, args.size, args.size, 3), np.float32)
    labels = rng.integers(0, NUM_CLASSES, args.batch).astype(np.int32)
    finetune, finetune_setup = compiled_step(VideoMAEClassifier(cfg, rngs=nnx.Rngs(0)), classification, video, labels)
    pretrain, pretrain_setup = compiled_step(VideoMAEPretrainer(cfg, rngs=nnx.Rngs(0)), reconstruction, video, labels)
    timed = time_interleaved({"fine-tune": finetune, "pre-train": pretrain}, args.warmup, args.steps)
    rates = {name: median_rate(seconds, args.batch) for name, seconds in timed.items()}
    grid = (args.frames // cfg.tubelet_size, args.size // cfg.patch_size, args.size // cfg.patch_size)
    visible = tube_mask(jax.random.key(0), 1, grid, args.mask_ratio)[0].shape[1]
    tokens = int(np.prod(grid))
    row = [variant, f"{args.frames}x{args.size}", str(args.batch), f"{args.mask_ratio:g}", f"{visible}/{tokens}",
           f"{rates['fine-tune']:.3f}", f"{rates['pre-train']:.3f}", f"{rates['pre-train'] / rates['fine-tune']:.2f}"]
    note = f"{variant}: setup (building, compiling, first step): fine-tune {finetune_setup:.1f} s, " \
           f"pre-train {pretrain_setup:.1f} s"
    return row, note


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="tiny,small", help="comma-separated VideoMAE variants")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--mask-ratio", type=float, default=0.9)
    parser.add_argument("--steps", type=int, default=5, help="timed rounds (median kept)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="cores to use (default: all allowed)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cores = pin_cores(args.threads)
    rows, notes = [], []
    for variant in args.variants.split(","):
        row, note = measure(args, variant.strip())
        rows.append(row)
        notes.append(note)
    print(f"Training step clips/s on {jax.default_backend()} ({len(cores)} cores), median of {args.steps} rounds:")
    print()
    print(markdown_table(["variant", "input", "batch", "mask ratio", "encoder tokens (visible/all)",
                          "fine-tune clips/s", "pre-train clips/s", "pre-train / fine-tune"], rows))
    print()
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
