"""Running a model over a whole split: every clip exactly once, on every host."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from jax.experimental import multihost_utils

from mmae_jax.data import pipeline
from mmae_jax.errors import InputError
from mmae_jax.train.metrics import classification_report


def to_host(array) -> np.ndarray:
    """The full global array on this host (gathered across processes when needed)."""
    if getattr(array, "is_fully_addressable", True):
        return np.asarray(array)
    return np.asarray(multihost_utils.process_allgather(array, tiled=True))


IN_FLIGHT = 2   # evaluation steps dispatched ahead of the last finished one


def predict_split(eval_step: Callable, state, data_cfg, split: str, *, batch_size: int,
                  sharding) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities [N, K], labels [N])`` for the N clips of ``split``, padding dropped.

    No result is copied to the host before the split is done: the host prepares the next
    batches while the devices run, at most ``IN_FLIGHT`` steps ahead of them (that bounds the
    device memory held by queued batches); the outputs stay on the devices until the end.
    """
    outputs = []
    for batch in pipeline.make_eval_iterator(data_cfg, split, global_batch_size=batch_size, sharding=sharding):
        outputs.append((eval_step(state, batch["video"]), batch["label"], batch["mask"]))
        if len(outputs) > IN_FLIGHT:
            outputs[-1 - IN_FLIGHT][0].block_until_ready()
    if not outputs:
        return np.zeros((0, 0), np.float32), np.zeros((0,), np.int64)
    probs, labels, masks = ([to_host(array) for array in arrays] for arrays in zip(*outputs))
    keep = np.concatenate(masks).astype(bool)
    return np.concatenate(probs)[keep], np.concatenate(labels)[keep]


def evaluate_split(eval_step: Callable, state, data_cfg, split: str, class_names: Sequence[str], *,
                   batch_size: int, sharding) -> dict:
    """The classification report (WAR, UAR, per-class recall, confusion) of ``split``;
    InputError for an empty split (never a NaN score)."""
    probs, labels = predict_split(eval_step, state, data_cfg, split, batch_size=batch_size, sharding=sharding)
    if not len(labels):
        raise empty_split_error(data_cfg, split)
    return classification_report(labels, probs.argmax(axis=-1) if len(probs) else labels, class_names)


def empty_split_error(data_cfg, split: str) -> InputError:
    """The one line for a split of ``data_cfg``'s protocol and fold that holds no clips."""
    return InputError(f"the {split} split of {data_cfg.dataset} (protocol {data_cfg.protocol}, fold {data_cfg.fold}) "
                      f"holds no clips", "choose another split, protocol or fold, or check the build")
