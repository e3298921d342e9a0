"""The kinds of model a model directory holds (``config.json``'s ``"kind"``), by name.

``"classifier"`` is a ``VideoMAEClassifier`` (what classification training trains and
``forward`` / ``predict`` run); ``"pretrainer"`` a ``VideoMAEPretrainer`` (the MAE encoder and
decoder that pre-training trains). mmae_jax/model/io.py builds and loads models through this
table, and each training task names the kind it trains (mmae_jax/train/tasks.py).
"""

from __future__ import annotations

from flax import nnx

from mmae_jax.model.encoder import VideoMAEClassifier
from mmae_jax.model.pretrain import VideoMAEPretrainer

MODEL_KINDS: dict[str, type[nnx.Module]] = {"classifier": VideoMAEClassifier, "pretrainer": VideoMAEPretrainer}


def model_class(kind: str) -> type[nnx.Module]:
    """The class of model ``kind``; ValueError naming the known kinds for any other."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(MODEL_KINDS)}")
    return MODEL_KINDS[kind]
