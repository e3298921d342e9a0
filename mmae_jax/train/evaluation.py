"""Running a model over a whole split: every clip exactly once, on every host."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from jax.experimental import multihost_utils

from mmae_jax.data import pipeline
from mmae_jax.train.metrics import classification_report


def to_host(array) -> np.ndarray:
    """The full global array on this host (gathered across processes when needed)."""
    if getattr(array, "is_fully_addressable", True):
        return np.asarray(array)
    return np.asarray(multihost_utils.process_allgather(array, tiled=True))


def predict_split(eval_step: Callable, state, data_cfg, split: str, *, batch_size: int,
                  sharding) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities [N, K], labels [N])`` for the N clips of ``split``, padding dropped."""
    probs, labels = [], []
    for batch in pipeline.make_eval_iterator(data_cfg, split, global_batch_size=batch_size, sharding=sharding):
        keep = to_host(batch["mask"]).astype(bool)
        probs.append(to_host(eval_step(state, batch["video"]))[keep])
        labels.append(to_host(batch["label"])[keep])
    if not probs:
        return np.zeros((0, 0), np.float32), np.zeros((0,), np.int64)
    return np.concatenate(probs), np.concatenate(labels)


def evaluate_split(eval_step: Callable, state, data_cfg, split: str, class_names: Sequence[str], *,
                   batch_size: int, sharding) -> dict:
    """The classification report (WAR, UAR, per-class recall, confusion) of ``split``."""
    probs, labels = predict_split(eval_step, state, data_cfg, split, batch_size=batch_size, sharding=sharding)
    return classification_report(labels, probs.argmax(axis=-1) if len(probs) else labels, class_names)
