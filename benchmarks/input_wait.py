"""How long the device waits for the host: training steps fed by the input pipeline.

Times one jitted training step (uint8 clips in, ``to_model_input`` and the model inside)
three ways: on one batch already on the device (the step alone), and fed by
``pipeline.make_train_iterator`` without and with device prefetch (``device_prefetch`` 0 and
2). The host never waits on a step's result inside a run (as in ``Trainer.run``), so
the device waits only when the next batch is not ready. Waiting share = 1 - (steps x the
step alone) / (the fed run's time).

On a CPU the "device" and the host share the cores, so there the share measures the
contention of tf.data and XLA for the same cores more than a transfer; on a GPU or TPU it is
the idle time of the accelerator.

    .venv/bin/python benchmarks/input_wait.py [--variant tiny] [--frames 16] [--size 224] [--batch 2] [--steps 6]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import jax
import numpy as np
import optax
from flax import nnx

from bench_data import DATASET, everything_train, write_dataset
from common import markdown_table
from mmae_jax.config.defaults import default_data_config
from mmae_jax.data.normalize import to_model_input
from mmae_jax.data.pipeline import make_train_iterator
from mmae_jax.model import VideoMAEClassifier, VideoMAEConfig
from mmae_jax.train.mesh import batch_sharding, create_mesh

NUM_CLASSES = 8


def make_step(cfg: VideoMAEConfig, normalization: str):
    """``(state, step)``: ``step(state, batch) -> (state, loss)`` jitted, the state donated."""
    model = VideoMAEClassifier(cfg, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params, rest = params.to_pure_dict(), rest.to_pure_dict()
    tx = optax.adamw(1e-4, weight_decay=0.05)

    def step(state, batch):
        params, opt_state = state
        video = to_model_input(batch["video"], normalization)

        def loss_fn(params):
            logits = nnx.merge(graphdef, params, rest)(video)
            return optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    return (params, tx.init(params)), jax.jit(step, donate_argnums=0)


def timed(state, step, batches, steps: int):
    """Runs ``steps`` steps on ``batches`` (an iterator), waiting only at the end."""
    start = time.perf_counter()
    for _ in range(steps):
        state, loss = step(state, next(batches))
    jax.block_until_ready((state, loss))
    return state, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="tiny")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--strategy", default="fslf")
    args = parser.parse_args()
    cfg = VideoMAEConfig.from_variant(args.variant, num_classes=NUM_CLASSES, num_frames=args.frames,
                                      img_size=args.size)
    sharding = batch_sharding(create_mesh())
    with tempfile.TemporaryDirectory() as data_dir:
        write_dataset(data_dir, max(2 * args.batch, 8), frames=args.frames, size=args.size)
        data_cfg = default_data_config()
        data_cfg.update(dataset=DATASET, data_dir=data_dir, shuffle_buffer=16, strategy=args.strategy,
                        num_frames=args.frames, image_size=args.size)

        def batches(prefetch: int):
            return make_train_iterator(data_cfg, global_batch_size=args.batch, sharding=sharding,
                                       split_fn=everything_train, device_prefetch=prefetch)

        state, step = make_step(cfg, data_cfg.normalization)
        first = next(batches(0))
        state, _ = timed(state, step, iter([first] * 2), 2)                  # compile, warm up
        state, alone = timed(state, step, iter([first] * args.steps), args.steps)
        rows = [("step alone (batch on the device)", f"{1000 * alone / args.steps:.0f}", "-")]
        for prefetch in (0, 2):
            fed = batches(prefetch)
            state, _ = timed(state, step, fed, 1)                              # fill the buffers
            state, seconds = timed(state, step, fed, args.steps)
            waiting = max(0.0, 1.0 - alone / seconds)
            rows.append((f"fed by the pipeline, device_prefetch={prefetch}",
                         f"{1000 * seconds / args.steps:.0f}", f"{100 * waiting:.0f}%"))
    clip_bytes = first["video"].nbytes // args.batch
    print(f"\nInput wait: {args.variant}, {args.frames}x{args.size}, batch {args.batch}, strategy "
          f"{args.strategy}, {args.steps} steps, backend {jax.default_backend()} "
          f"({jax.device_count()} x {jax.devices()[0].device_kind}); {clip_bytes:,} bytes per clip "
          f"({first['video'].dtype})")
    print(markdown_table(("run", "ms per step", "device waiting"), rows))


if __name__ == "__main__":
    main()
