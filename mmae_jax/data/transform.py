"""One stored clip -> one uint8 model input: subsample, augment, render, fuse, round.

``clip_to_video`` is the TensorFlow function the tf.data pipeline maps over examples; it
returns pixel values 0..255 as uint8, the bytes that cross to the device. The float
conversion and the normalisation happen on the device, in the jitted steps
(``normalize.to_model_input``). ``prepare_clip`` runs the same function eagerly on NumPy
arrays (no JAX), for pictures of the strategies; ``source_images`` gives the face and
spectrogram images before fusion (prediction and attribution fuse them on the device).

Where the pixels are rounded: faces resampled by the crop or the resize, and gray
spectrograms, are float until they are rounded to uint8 (half to even); viridis colours are
the 256 colours of the table, each rounded. The frame-arranging strategies round each source
and then move frames; cfas and sfas mix the float pixels and round the mix once. Every
pixel of the model input is within 0.5 / 255 / std of the unrounded clip.
"""

from __future__ import annotations

from typing import Callable

import ml_collections
import numpy as np
import tensorflow as tf

from mmae_jax.config.validate import check_layout
from mmae_jax.data import augment, clip_layout
from mmae_jax.data.fusion import FRAME_STRATEGIES, fuse, fuse_read_frames, source_frames, to_uint8
from mmae_jax.data.render import render_spectrograms


def uniform_frame_indices(stored: int, wanted: int) -> np.ndarray:
    """Indices of ``wanted`` frames spread uniformly over ``stored`` (identity when equal)."""
    if stored < wanted:
        raise ValueError(f"clips hold {stored} frames but num_frames={wanted} were asked for")
    return np.floor((np.arange(wanted) + 0.5) * stored / wanted).astype(np.int32)


FrameReader = Callable[[np.ndarray], tf.Tensor]


def _clip_seeds(seed: tf.Tensor) -> list[tf.Tensor]:
    """The crop, flip, spectrogram-mask and rfas-order seeds of one clip's ``[2]`` seed."""
    return tf.unstack(tf.random.experimental.stateless_split(seed, 4))


def source_images(read_faces: FrameReader, windows: tf.Tensor, cfg: ml_collections.ConfigDict,
                  seed: tf.Tensor, *, train: bool, positions: tuple[np.ndarray, np.ndarray] | None = None,
                  dtype: tf.DType = tf.uint8, half_windows: tf.Tensor | None = None
                  ) -> tuple[tf.Tensor, tf.Tensor]:
    """The face images and spectrogram images of one clip, before fusion.

    Args:
      read_faces: stored frame indices ``[k]`` -> ``[k, H, W, 3]`` uint8 face frames.
      windows: ``[T0, F, W]`` float spectrogram windows, window t centred on frame t.
      cfg: the data config (strategy, num_frames, image_size, render, augment).
      seed: ``[2]`` int stateless seed of this clip (augmentation; ``clip_to_video``: also
        the rfas order).
      train: apply the training augmentations of ``cfg.augment``.
      positions: (face positions, spectrogram positions) among the T subsampled frames;
        default: the frames ``cfg.strategy`` reads (``fusion.source_frames``).
      dtype: uint8 (rounded) or float32 (exact) pixel values 0..255.
      half_windows: ``[T0 / 2, F, W]`` the stored ``spectrogram_half`` of a 'spanning' layout
        build; with ``cfg.frame_sampling == "notebook_timing"`` the stored frames are read as they
        are and the windows per strategy come from ``clip_layout.windows_read``.

    Returns:
      faces ``[k, S, S, 3]`` and spectrogram images ``[m, S, S, 3]`` of ``dtype``.
    """
    frames = uniform_frame_indices(int(windows.shape[0]), cfg.num_frames)
    face_positions, spec_positions = positions or source_frames(cfg.strategy, cfg.num_frames)
    crop_seed, flip_seed, mask_seed, _ = _clip_seeds(seed)
    aug = cfg.augment
    faces = tf.zeros([0, cfg.image_size, cfg.image_size, 3], dtype)
    if len(face_positions):
        faces = read_faces(frames[face_positions])
        flip = train and aug.face_flip
        if train and aug.face_crop:
            faces = augment.random_resized_crop(
                faces, crop_seed, cfg.image_size, tuple(aug.face_crop_scale),
                tuple(aug.face_crop_ratio), flip_seed=flip_seed if flip else None)
        else:
            faces = augment.resize_faces(faces, cfg.image_size)
            if flip:
                faces = augment.random_flip(faces, flip_seed)
        faces = to_uint8(faces, "tf") if dtype == tf.uint8 and faces.dtype != tf.uint8 else tf.cast(faces, dtype)
    check_layout(cfg.get("frame_sampling", "uniform"), half_windows is not None)
    notebook_timing = cfg.get("frame_sampling", "uniform") == "notebook_timing"
    if notebook_timing:
        windows = clip_layout.windows_read(windows, half_windows, spec_positions, cfg.strategy, cfg.num_frames)
        spec_positions = np.arange(int(windows.shape[0]))
    else:
        windows = tf.gather(windows, frames)
    if train and (aug.spec_time_mask > 0 or aug.spec_freq_mask > 0):
        windows = augment.mask_spectrograms(windows, mask_seed, aug.spec_time_mask,
                                            aug.spec_freq_mask)
    spectrograms = render_spectrograms(windows if notebook_timing else tf.gather(windows, spec_positions),
                                       cfg.image_size, cfg.spectrogram_render, dtype)
    return faces, spectrograms


def clip_to_video(read_faces: FrameReader, windows: tf.Tensor, cfg: ml_collections.ConfigDict,
                  seed: tf.Tensor, *, train: bool, half_windows: tf.Tensor | None = None,
                  order_seed: tf.Tensor | None = None) -> tf.Tensor:
    """Builds the fused uint8 clip ``[T, S, S, 3]`` (T = cfg.num_frames, S = cfg.image_size).

    Only the frames the strategy reads are decoded, augmented and rendered (half of each
    modality for fslf/ffls/ofos/rfas, one modality for face_only/audio_only); they are rounded
    to uint8 and arranged by ``fusion.fuse_read_frames``. cfas and sfas mix float pixels of
    every frame and round the mix. ``order_seed``: the rfas order's ``[2]`` seed (default:
    drawn from ``seed``; ``clip_layout.clip_order_seed`` fixes it per clip). Other arguments as
    for ``source_images``.
    """
    order_seed = _clip_seeds(seed)[3] if order_seed is None else order_seed
    if cfg.strategy in FRAME_STRATEGIES:
        faces, spectrograms = source_images(read_faces, windows, cfg, seed, train=train,
                                            half_windows=half_windows)
        return fuse_read_frames(faces, spectrograms, cfg.strategy, rng=order_seed, backend="tf")
    faces, spectrograms = source_images(read_faces, windows, cfg, seed, train=train,
                                        dtype=tf.float32, half_windows=half_windows)
    return to_uint8(fuse(faces, spectrograms, cfg.strategy, rng=order_seed, sfas_mode=cfg.sfas_mode,
                         cfas_resize=cfg.get("cfas_resize", "mean"), backend="tf"), "tf")


def _eager_inputs(faces: np.ndarray, spectrogram: np.ndarray) -> tuple[FrameReader, tf.Tensor]:
    faces = tf.convert_to_tensor(faces, tf.uint8)
    return (lambda indices: tf.gather(faces, indices)), tf.convert_to_tensor(spectrogram, tf.float32)


def _with_strategy(cfg: ml_collections.ConfigDict, strategy: str | None) -> ml_collections.ConfigDict:
    if strategy is None:
        return cfg
    cfg = ml_collections.ConfigDict(cfg.to_dict())
    cfg.strategy = strategy
    return cfg


def prepare_clip(faces: np.ndarray, spectrogram: np.ndarray, cfg: ml_collections.ConfigDict, *,
                 strategy: str | None = None, seed: int = 0,
                 spectrogram_half: np.ndarray | None = None) -> np.ndarray:
    """Evaluation-mode ``clip_to_video`` on NumPy arrays; returns ``[T, S, S, 3]`` uint8.

    ``faces``: stored ``[T0, H, W, 3]`` uint8; ``spectrogram``: ``[T0, F, W]``;
    ``spectrogram_half``: ``[T0 / 2, F, W]`` of a 'spanning' layout build; ``strategy`` overrides
    ``cfg.strategy``; ``seed`` draws the rfas order.
    """
    half = None if spectrogram_half is None else tf.convert_to_tensor(spectrogram_half, tf.float32)
    video = clip_to_video(*_eager_inputs(faces, spectrogram), _with_strategy(cfg, strategy),
                          tf.constant([seed, 0], tf.int64), train=False, half_windows=half)
    return video.numpy()


def prepare_sources(faces: np.ndarray, spectrogram: np.ndarray, cfg: ml_collections.ConfigDict,
                    spectrogram_half: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Evaluation-mode ``source_images`` of all T frames of both modalities, float32 pixel
    values 0..255 (not rounded): fusing and rounding them gives ``prepare_clip``'s clip.
    ``spectrogram_half``: as for ``prepare_clip``."""
    every = np.arange(cfg.num_frames)
    half = None if spectrogram_half is None else tf.convert_to_tensor(spectrogram_half, tf.float32)
    images = source_images(*_eager_inputs(faces, spectrogram), cfg, tf.constant([0, 0], tf.int64),
                           train=False, positions=(every, every), dtype=tf.float32, half_windows=half)
    return tuple(image.numpy() for image in images)
