"""Flax NNX VideoMAE: encoder, classifier and the MAE pre-training model."""

from mmae_jax.model.config import VARIANTS, VideoMAEConfig
from mmae_jax.model.encoder import VideoMAEClassifier, VideoMAEEncoder, trainable_filter
from mmae_jax.model.masking import boolean_mask, tube_mask
from mmae_jax.model.pretrain import VideoMAEDecoder, VideoMAEPretrainer

__all__ = [
    "VARIANTS", "VideoMAEConfig", "VideoMAEClassifier", "VideoMAEEncoder", "VideoMAEDecoder",
    "VideoMAEPretrainer", "boolean_mask", "trainable_filter", "tube_mask",
]
