"""Input pipeline throughput: fused, augmented uint8 16x224 clips per second on ONE core.

Writes a small TFDS dataset shaped like the real builders' output (``bench_data.py``: JPEG
face frames [16, 224, 224, 3], float32 log-mel windows [16, 128, 51]), pins this process to
one CPU core, and prints one table: the end-to-end training pipeline per strategy (read,
decode, augment, render, fuse, round to uint8, batch), the bytes per clip that cross to the
device (uint8, against the float32 clips of a pipeline that normalises on the host), and
the cost of each stage run alone.

    .venv/bin/python benchmarks/pipeline.py [--clips 48] [--batches 12]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})   # before TF starts its threads

import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from bench_data import DATASET, S, T, F, W, everything_train, write_dataset  # noqa: E402
from common import markdown_table  # noqa: E402
from mmae_jax.data import augment  # noqa: E402
from mmae_jax.config.defaults import default_data_config  # noqa: E402
from mmae_jax.config.choices import STRATEGIES  # noqa: E402
from mmae_jax.data.fusion import fuse, fuse_read_frames, to_uint8  # noqa: E402
from mmae_jax.data.pipeline import train_dataset  # noqa: E402
from mmae_jax.data.render import render_spectrograms  # noqa: E402


def clips_per_second(run, clips: int, repeats: int = 1) -> tuple[float, float]:
    """(clips per wall-clock second, clips per CPU second of this process) of ``run``.

    The process is pinned to one core, so on a quiet machine the two agree; on a busy one the
    second is what the core would give the pipeline alone."""
    run()   # warm-up (tracing, caches)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        run()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return clips * repeats / wall, clips * repeats / cpu


def stage_rows(cfg, example_faces: tf.Tensor, encoded: tf.Tensor, feature
               ) -> list[tuple[str, tuple[float, float]]]:
    seed = tf.constant([0, 1], tf.int64)
    windows = tf.random.normal([T, F, W])
    images = tf.random.uniform([T, S, S, 3], maxval=255.0)
    aug = cfg.augment
    read = to_uint8(images[: T // 2], "tf")
    stages = {
        "decode 16 JPEG frames": tf.function(lambda: feature.decode_example(encoded)),
        "face crop + flip -> uint8": tf.function(lambda: to_uint8(augment.random_resized_crop(
            example_faces, seed, S, aug.face_crop_scale, aug.face_crop_ratio, flip_seed=seed), "tf")),
        "render 16 windows (viridis, uint8)": tf.function(lambda: render_spectrograms(windows, S)),
        "arrange 8 + 8 uint8 frames read (fslf)": tf.function(lambda: fuse_read_frames(read, read, "fslf", backend="tf")),
        "mix 16 + 16 float frames, round (cfas)": tf.function(
            lambda: to_uint8(fuse(images, images, "cfas", backend="tf"), "tf")),
    }
    return [(f"stage: {name}", clips_per_second(fn, 1, repeats=20)) for name, fn in stages.items()]


def rounding_rows(cfg, faces: tf.Tensor, windows: tf.Tensor) -> list[tuple[str, str]]:
    """Max |model input from the uint8 clip - model input computed without rounding| per
    strategy and normalisation, training mode, in units of 1/255/std (0.5 is half a level)."""
    import numpy as np

    from mmae_jax.data.normalize import mean_std, normalize, to_model_input
    from mmae_jax.data.transform import _clip_seeds, clip_to_video, source_images

    read = lambda indices: tf.gather(faces, indices)          # noqa: E731
    every = np.arange(cfg.num_frames)
    rows = []
    for strategy in [*STRATEGIES[:-1], "sfas:mean", "sfas:clip", "sfas:wrap"]:
        worst = []
        for normalization in ("imagenet_mean_std0225", "videomae"):
            run = cfg.copy_and_resolve_references()
            run.strategy, _, mode = strategy.partition(":")
            run.update(sfas_mode=mode or "mean", normalization=normalization)
            seed = tf.constant([3, 4], tf.int64)
            clip = clip_to_video(read, windows, run, seed, train=True).numpy()
            sources = source_images(read, windows, run, seed, train=True, positions=(every, every),
                                    dtype=tf.float32)
            exact = fuse(*sources, run.strategy, rng=_clip_seeds(seed)[3], sfas_mode=run.sfas_mode, backend="tf")
            difference = np.abs(to_model_input(clip, normalization)
                                - normalize(exact.numpy() / 255.0, normalization))
            worst.append(float((difference * 255.0 * mean_std(normalization)[1]).max()))
        rows.append((strategy, *(f"{value:.3f}" for value in worst)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--batches", type=int, default=12)
    args = parser.parse_args()
    batch = 8
    with tempfile.TemporaryDirectory() as data_dir:
        write_dataset(data_dir, args.clips)
        cfg = default_data_config()
        cfg.update(dataset=DATASET, data_dir=data_dir, shuffle_buffer=64)
        rows, clip_bytes = [], None
        for strategy in STRATEGIES:
            cfg.strategy = strategy
            dataset = train_dataset(cfg, local_batch_size=batch, process_index=0, process_count=1,
                                    split_fn=everything_train)
            iterator = dataset.as_numpy_iterator()
            rates = clips_per_second(lambda: [next(iterator) for _ in range(args.batches)],
                                     batch * args.batches)
            rows.append((f"pipeline: {strategy}", *(f"{rate:.1f}" for rate in rates)))
            clip_bytes = next(iterator)["video"][0].nbytes
        builder = tfds.builder(DATASET, data_dir=data_dir)
        example = next(iter(builder.as_dataset(split="data[:1]", decoders={
            "faces": tfds.decode.SkipDecoding()})))
        feature = builder.info.features["faces"]
        faces = feature.decode_example(example["faces"])
        rows += [(name, *(f"{rate:.1f}" for rate in rates)) for name, rates in stage_rows(
            cfg, faces, example["faces"], feature)]
        windows = next(iter(builder.as_dataset(split="data[:1]")))["spectrogram"]
        rounding = rounding_rows(cfg, faces, windows)
    print(f"\nInput pipeline on 1 core ({os.cpu_count()} in the machine), {T}x{S}x{S} clips, "
          f"batch {batch}, training augmentation on")
    print(markdown_table(("what", "clips/s/core", "clips per CPU second"), rows))
    print(f"\nBytes per clip crossing to the device: {clip_bytes:,} (uint8 [{T}, {S}, {S}, 3]); "
          f"a float32 clip is {4 * clip_bytes:,} (4x).")
    print("\nRounding to uint8 on the host: max |model input - model input without rounding| over "
          "one clip, training augmentation on, in units of 1 / (255 std) (0.5 = half a pixel level)")
    print(markdown_table(("strategy", "imagenet_mean_std0225", "videomae"), rounding))


if __name__ == "__main__":
    main()
