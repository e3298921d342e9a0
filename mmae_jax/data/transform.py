"""One stored clip -> one model input: subsample, augment, render, fuse, normalise.

``clip_to_video`` is the TensorFlow function the tf.data pipeline maps over examples;
``prepare_clip`` runs the same function eagerly on NumPy arrays (no JAX), for prediction on
new videos and for pictures of the strategies.
"""

from __future__ import annotations

from typing import Callable

import ml_collections
import numpy as np
import tensorflow as tf

from mmae_jax.data import augment
from mmae_jax.data.fusion import FRAME_STRATEGIES, fuse, fuse_read_frames, source_frames
from mmae_jax.data.normalize import normalize
from mmae_jax.data.render import render_spectrograms


def uniform_frame_indices(stored: int, wanted: int) -> np.ndarray:
    """Indices of ``wanted`` frames spread uniformly over ``stored`` (identity when equal)."""
    if stored < wanted:
        raise ValueError(f"clips hold {stored} frames but num_frames={wanted} were asked for")
    return np.floor((np.arange(wanted) + 0.5) * stored / wanted).astype(np.int32)


FrameReader = Callable[[np.ndarray], tf.Tensor]


def clip_to_video(read_faces: FrameReader, windows: tf.Tensor, cfg: ml_collections.ConfigDict,
                  seed: tf.Tensor, *, train: bool, normalized: bool = True) -> tf.Tensor:
    """Builds the fused clip the model reads.

    Only the frames the strategy reads are decoded, augmented and rendered
    (``fusion.source_frames``: half of each modality for fslf/ffls/ofos/rfas, one modality
    for face_only/audio_only), and arranged by ``fusion.fuse_read_frames``.

    Args:
      read_faces: stored frame indices ``[k]`` -> ``[k, H, W, 3]`` uint8 face frames.
      windows: ``[T0, F, W]`` float spectrogram windows, window t centred on frame t.
      cfg: the data config (strategy, num_frames, image_size, render, normalisation, augment).
      seed: ``[2]`` int stateless seed of this clip (augmentation and the rfas order).
      train: apply the training augmentations of ``cfg.augment``.
      normalized: apply ``cfg.normalization`` (False gives [0, 1] images for display).

    Returns:
      ``[T, S, S, 3]`` float32, T = cfg.num_frames, S = cfg.image_size.
    """
    frames = uniform_frame_indices(int(windows.shape[0]), cfg.num_frames)
    face_positions, spec_positions = source_frames(cfg.strategy, cfg.num_frames)
    windows = tf.gather(windows, frames)
    crop_seed, flip_seed, mask_seed, order_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 4))
    normalization = cfg.normalization if normalized else None
    # Moving frames (the frame-arranging strategies) and averaging pixels (cfas, sfas "mean")
    # commute with the per-channel normalisation: there each source is normalised on its own,
    # folded into the face crop and the colour table, and the fused clip is not touched again.
    arranged = cfg.strategy in FRAME_STRATEGIES
    linear = arranged or cfg.strategy == "cfas" or (cfg.strategy == "sfas" and cfg.sfas_mode == "mean")
    source_normalization = normalization if linear else None
    aug = cfg.augment
    images = tf.zeros([0, cfg.image_size, cfg.image_size, 3], tf.float32)
    if face_positions.size:
        faces = read_faces(frames[face_positions])
        flip = train and aug.face_flip
        if train and aug.face_crop:
            images = augment.random_resized_crop(
                faces, crop_seed, cfg.image_size, tuple(aug.face_crop_scale),
                tuple(aug.face_crop_ratio), flip_seed=flip_seed if flip else None,
                normalization=source_normalization)
        else:
            images = augment.faces_to_float(faces, cfg.image_size, source_normalization)
            if flip:
                images = augment.random_flip(images, flip_seed)
    if train and (aug.spec_time_mask > 0 or aug.spec_freq_mask > 0):
        windows = augment.mask_spectrograms(windows, mask_seed, aug.spec_time_mask,
                                            aug.spec_freq_mask)
    spectrograms = render_spectrograms(tf.gather(windows, spec_positions), cfg.image_size,
                                       cfg.spectrogram_render, source_normalization)
    if arranged:
        return fuse_read_frames(images, spectrograms, cfg.strategy, rng=order_seed)
    # cfas and sfas read every frame of both and mix pixels.
    video = fuse(images, spectrograms, cfg.strategy, rng=order_seed, sfas_mode=cfg.sfas_mode)
    return video if normalization is None or linear else normalize(video, normalization)


def prepare_clip(faces: np.ndarray, spectrogram: np.ndarray, cfg: ml_collections.ConfigDict, *,
                 strategy: str | None = None, seed: int = 0, normalized: bool = True
                 ) -> np.ndarray:
    """Evaluation-mode ``clip_to_video`` on NumPy arrays; returns ``[T, S, S, 3]`` float32.

    ``strategy`` overrides ``cfg.strategy``; ``seed`` draws the rfas order.
    """
    if strategy is not None:
        cfg = ml_collections.ConfigDict(cfg.to_dict())
        cfg.strategy = strategy
    faces = tf.convert_to_tensor(faces, tf.uint8)
    video = clip_to_video(lambda indices: tf.gather(faces, indices),
                          tf.convert_to_tensor(spectrogram, tf.float32), cfg,
                          tf.constant([seed, 0], tf.int64), train=False, normalized=normalized)
    return video.numpy()
