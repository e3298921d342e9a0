"""Input pipeline throughput: fused, augmented, normalised 16x224 clips per second on ONE core.

Writes a small TFDS dataset shaped like the real builders' output (JPEG face frames
[16, 224, 224, 3], float32 log-mel windows [16, 128, 51]), pins this process to one CPU
core, and prints one table: the end-to-end training pipeline per strategy (read, decode,
augment, render, fuse, normalise, batch) and the cost of each stage run alone.

    .venv/bin/python benchmarks/pipeline.py [--clips 48] [--batches 12]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})   # before TF starts its threads

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from common import markdown_table  # noqa: E402
from mmae_jax.data import augment  # noqa: E402
from mmae_jax.data.config import default_data_config  # noqa: E402
from mmae_jax.data.fusion import fuse, fuse_read_frames, to_uint8  # noqa: E402
from mmae_jax.data.pipeline import train_dataset  # noqa: E402
from mmae_jax.data.render import render_spectrograms  # noqa: E402

T, S, F, W = 16, 224, 128, 51


def face_clip(rng: np.random.Generator) -> np.ndarray:
    """A smooth face-like image sequence with noise (JPEG sizes like real crops)."""
    y, x = np.mgrid[0:S, 0:S] / S
    base = 128 + 90 * np.sin(6 * x + rng.random() * 6) * np.cos(4 * y)
    frames = base[None, :, :, None] + rng.normal(0, 12, (T, S, S, 3))
    return np.clip(frames, 0, 255).astype(np.uint8)


def write_dataset(data_dir: str, clips: int) -> None:
    rng = np.random.default_rng(0)
    features = tfds.features.FeaturesDict({
        "faces": tfds.features.Video((T, S, S, 3), encoding_format="jpeg"),
        "spectrogram": tfds.features.Tensor(shape=(T, F, W), dtype=np.float32),
        "label": tfds.features.ClassLabel(num_classes=8),
        "speaker": tfds.features.Scalar(dtype=np.int32),
        "clip_id": tfds.features.Text()})
    examples = [(i, {"faces": face_clip(rng), "label": i % 8, "speaker": i % 4,
                     "spectrogram": rng.normal(size=(T, F, W)).astype(np.float32),
                     "clip_id": f"clip{i:03d}"}) for i in range(clips)]
    tfds.dataset_builders.store_as_tfds_dataset(
        name="bench_clips", version="1.0.0", features=features, data_dir=data_dir,
        split_datasets={"data": examples})


def clips_per_second(run, clips: int, repeats: int = 1) -> float:
    run()   # warm-up (tracing, caches)
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    return clips * repeats / (time.perf_counter() - start)


def stage_rows(cfg, example_faces: tf.Tensor, encoded: tf.Tensor, feature) -> list[tuple[str, float]]:
    seed = tf.constant([0, 1], tf.int64)
    windows = tf.random.normal([T, F, W])
    images = tf.random.uniform([T, S, S, 3], maxval=255.0)
    aug = cfg.augment
    read = to_uint8(images[: T // 2])
    stages = {
        "decode 16 JPEG frames": tf.function(lambda: feature.decode_example(encoded)),
        "face crop + flip -> uint8": tf.function(lambda: to_uint8(augment.random_resized_crop(
            example_faces, seed, S, aug.face_crop_scale, aug.face_crop_ratio, flip_seed=seed))),
        "render 16 windows (viridis, uint8)": tf.function(lambda: render_spectrograms(windows, S)),
        "arrange 8 + 8 uint8 frames read (fslf)": tf.function(lambda: fuse_read_frames(read, read, "fslf")),
        "mix 16 + 16 float frames, round (cfas)": tf.function(
            lambda: to_uint8(fuse(images, images, "cfas"))),
    }
    return [(f"stage: {name}", clips_per_second(fn, 1, repeats=20)) for name, fn in stages.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--batches", type=int, default=12)
    args = parser.parse_args()
    batch = 8
    with tempfile.TemporaryDirectory() as data_dir:
        write_dataset(data_dir, args.clips)
        cfg = default_data_config()
        cfg.update(dataset="bench_clips", data_dir=data_dir, shuffle_buffer=64)
        everything_train = lambda ids, speakers: ["train"] * len(ids)
        rows = []
        for strategy in ("fslf", "ofos", "rfas", "cfas", "sfas", "face_only"):
            cfg.strategy = strategy
            dataset = train_dataset(cfg, local_batch_size=batch, process_index=0, process_count=1,
                                    split_fn=everything_train)
            iterator = dataset.as_numpy_iterator()
            rows.append((f"pipeline: {strategy}", clips_per_second(
                lambda: [next(iterator) for _ in range(args.batches)], batch * args.batches)))
        builder = tfds.builder("bench_clips", data_dir=data_dir)
        example = next(iter(builder.as_dataset(split="data[:1]", decoders={
            "faces": tfds.decode.SkipDecoding()})))
        feature = builder.info.features["faces"]
        rows += stage_rows(cfg, feature.decode_example(example["faces"]), example["faces"],
                           feature)
    print(f"\nInput pipeline on 1 core ({os.cpu_count()} in the machine), {T}x{S}x{S} clips, "
          f"batch {batch}, training augmentation on")
    print(markdown_table(("what", "clips/s/core"), [(name, f"{rate:.1f}") for name, rate in rows]))


if __name__ == "__main__":
    main()
