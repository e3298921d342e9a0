"""A small stored TFDS dataset shaped like the real builders' output, for the data benchmarks.

JPEG face frames ``[T, S, S, 3]`` (smooth images with noise, so JPEG sizes are like real
crops) and float32 log-mel-like windows ``[T, F, W]``; 8 classes, 4 speakers.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

T, S, F, W = 16, 224, 128, 51
DATASET = "bench_clips"


def face_clip(rng: np.random.Generator, frames: int = T, size: int = S) -> np.ndarray:
    """A smooth face-like image sequence with noise, ``[frames, size, size, 3]`` uint8."""
    y, x = np.mgrid[0:size, 0:size] / size
    base = 128 + 90 * np.sin(6 * x + rng.random() * 6) * np.cos(4 * y)
    images = base[None, :, :, None] + rng.normal(0, 12, (frames, size, size, 3))
    return np.clip(images, 0, 255).astype(np.uint8)


def write_dataset(data_dir: str, clips: int, frames: int = T, size: int = S) -> None:
    """Writes ``clips`` examples as the TFDS dataset ``bench_clips`` (split ``data``) in ``data_dir``."""
    rng = np.random.default_rng(0)
    features = tfds.features.FeaturesDict({
        "faces": tfds.features.Video((frames, size, size, 3), encoding_format="jpeg"),
        "spectrogram": tfds.features.Tensor(shape=(frames, F, W), dtype=np.float32),
        "label": tfds.features.ClassLabel(num_classes=8),
        "speaker": tfds.features.Scalar(dtype=np.int32),
        "clip_id": tfds.features.Text()})
    examples = [(i, {"faces": face_clip(rng, frames, size), "label": i % 8, "speaker": i % 4,
                     "spectrogram": rng.normal(size=(frames, F, W)).astype(np.float32),
                     "clip_id": f"clip{i:03d}"}) for i in range(clips)]
    tfds.dataset_builders.store_as_tfds_dataset(
        name=DATASET, version="1.0.0", features=features, data_dir=data_dir,
        split_datasets={"data": examples})


def everything_train(clip_ids, speakers, *rest) -> list[str]:
    """A split function putting every clip in ``train``."""
    return ["train"] * len(clip_ids)
