"""Tiny stored datasets in the data_prep contract, written straight to TFDS (no media decoding).

The label is visible in both modalities (face brightness, and the spectrogram row that
carries energy), so a tiny model learns it in a few dozen steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds


def make_examples(num_speakers: int, clips_per_speaker: int, num_classes: int, *, frames: int, size: int,
                  bins: int, width: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    examples = []
    for speaker in range(1, num_speakers + 1):
        for clip in range(clips_per_speaker):
            label = (speaker + clip) % num_classes
            faces = rng.integers(0, 40, (frames, size, size, 3)).astype(np.uint8)
            faces[:, size // 4: 3 * size // 4, size // 4: 3 * size // 4] += np.uint8(40 + 200 * label // num_classes)
            spectrogram = rng.normal(0.0, 0.1, (frames, bins, width)).astype(np.float32)
            spectrogram[:, label * bins // num_classes] += 3.0
            examples.append(dict(faces=faces, spectrogram=spectrogram, label=label, speaker=speaker,
                                 clip_id=f"clip-{speaker:02d}-{clip:02d}"))
    return examples


def write_stored_dataset(data_dir: str | Path, *, name: str = "synthetic", num_speakers: int = 12,
                         clips_per_speaker: int = 4, num_classes: int = 4, frames: int = 4, size: int = 32,
                         bins: int = 8, width: int = 6, seed: int = 0):
    """Write the examples as the one ``data`` split of TFDS dataset ``name`` under ``data_dir``."""
    features = tfds.features.FeaturesDict({
        "faces": tfds.features.Tensor(shape=(frames, size, size, 3), dtype=np.uint8),
        "spectrogram": tfds.features.Tensor(shape=(frames, bins, width), dtype=np.float32),
        "label": tfds.features.ClassLabel(names=[f"class{i}" for i in range(num_classes)]),
        "speaker": tfds.features.Scalar(dtype=np.int64),
        "clip_id": tfds.features.Text(),
    })
    examples = make_examples(num_speakers, clips_per_speaker, num_classes, frames=frames, size=size,
                             bins=bins, width=width, seed=seed)
    return tfds.dataset_builders.store_as_tfds_dataset(
        name=name, version="1.0.0", features=features, split_datasets={"data": [(example["clip_id"], example) for example in examples]},
        data_dir=str(data_dir), disable_shuffling=True)


# ---- the tiny experiment that trains on the stored dataset ------------------------------------

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DEMO = str(CONFIGS / "demo.py")

# Overrides of configs/demo.py that fit write_stored_dataset's defaults (4 frames of 32 x 32):
# 32 training clips, so 4 steps an epoch, an evaluation every epoch.
TINY = {"data.image_size": 32, "data.num_frames": 4, "data.shuffle_buffer": 64, "batch_size": 8,
        "num_epochs": 3, "eval.every_epochs": 1, "eval.batch_size": 16, "optim.lr": 3e-3,
        "optim.warmup_epochs": 0.0, "log_every_steps": 1, "checkpoint.every_steps": 1000}


def tiny_config(data_dir, base=None, **changes):
    """``base`` (default: ``configs/demo.py``'s config) with ``TINY`` and ``changes`` applied;
    a dotted key (``**{"data.strategy": "ofos"}``) sets a nested field."""
    if base is None:
        base = _demo_config()
    for key, value in {"data.data_dir": str(data_dir), **TINY, **changes}.items():
        node = base
        *parents, leaf = key.split(".")
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return base


def tiny_flags(data_dir, *extra: str, config: str = DEMO, **changes) -> list[str]:
    """The ``--config`` command-line arguments of ``tiny_config(data_dir, **changes)``, then ``extra``."""
    values = {"data.data_dir": str(data_dir), **TINY, **changes}
    return ["--config", config, *[f"--config.{key}={value}" for key, value in values.items()], *extra]


def _demo_config():
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo_config", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def tiny_argv(data_dir, *extra: str) -> list[str]:
    """``tiny_flags`` of a two-step run (one epoch stopped at step 2), then ``extra``."""
    return tiny_flags(data_dir, *extra, num_epochs=1, max_steps=2)


def save_tiny_model(directory, **changes):
    """A random classifier of the tiny config's shape (4 frames of 32 x 32, 4 classes) saved in ``directory``."""
    from mmae_jax.model.config import VideoMAEConfig
    from mmae_jax.model.io import build_model, save_model

    cfg = VideoMAEConfig.from_variant("tiny", num_classes=4, num_frames=4, img_size=32, **changes)
    return save_model(directory, build_model(cfg, "classifier"), cfg, kind="classifier")


def task_with_batches(task_class, change):
    """A ``task_class`` instance whose train batches pass through ``change(step, batch)`` (``step``
    counts from 1, as the loop's ``done``), for a Trainer to run: a poisoned or interrupted stream."""

    class Changed(task_class):
        def train_batches(self, context, start_step):
            for step, batch in enumerate(super().train_batches(context, start_step), start=start_step + 1):
                yield change(step, batch)

    return Changed()


def sigterm_at(at_step: int):
    """A ``task_with_batches`` change that sends this process SIGTERM while step ``at_step`` runs:
    that step is saved, the next is not run."""
    import os
    import signal

    def change(step, batch):
        if step == at_step:
            os.kill(os.getpid(), signal.SIGTERM)
        return batch

    return change
