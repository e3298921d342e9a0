"""One stored clip -> one uint8 model input: a chain of small ops built once from the data config.

Each op is a function of the clip's dict of tensors that returns the dict with its keys
added or replaced (the shape of big_vision's preprocessing ops). ``clip_fn`` builds the
chain of one data config and checks the config there, once. Which stored frames and windows
a read takes also depends on the build (frames stored per clip, a 'spanning' layout build's
``spectrogram_half``): ``frame_plan`` works that out, and checks that the config fits the
build, once per build shape, from the static shapes of the first example traced, before any
clip is read. The traced graph holds only the ops' arithmetic. In order:

==============  ===========================================================================
seeds           ``seed`` [2] -> the crop, flip and mask seeds, and ``order_seed`` (the rfas
                order) unless the example brings its own
decode          the stored face frames the strategy shows (only those) -> ``faces`` uint8
                ``[k, H, W, 3]``; the stored windows -> ``windows`` float32 ``[T0, F, W]``
choose windows  the windows those frames show (``clip_layout``: ``uniform`` or ``notebook_timing``)
faces           training: random resized crop + flip (``augment``); else resize to S x S
spectrograms    training: time / frequency masks; render to S x S pixels (``render``)
arrange | mix   fslf/ffls/ofos/rfas/face_only/audio_only move the frames read
                (``fusion.fuse_read_frames``); cfas/sfas mix the float pixels (``fusion.fuse``)
uint8           the mix rounded once -> ``video`` ``[T, S, S, 3]`` uint8
==============  ===========================================================================

The clip leaves the host as uint8 pixel values 0..255; the float conversion and the
normalisation happen on the device, in the jitted steps (``normalize.to_model_input``).
``sources_fn`` stops before arranging or mixing: the face and spectrogram images of all T
frames, which prediction and attribution fuse on the device. ``prepare_clip`` /
``prepare_sources`` run the chain eagerly on NumPy arrays (pictures, prediction);
``clip_to_video`` / ``source_images`` run it once on tensors.

Where the pixels are rounded: faces resampled by the crop or the resize, and gray
spectrograms, are float until they are rounded to uint8 (half to even); viridis colours are
the 256 colours of the table, each rounded. The frame-arranging strategies round each source
(their source pixels are uint8) and then move frames, which commutes with the rounding; cfas
and sfas mix the float pixels and round the mix once. Every pixel of the model input is
within 0.5 / 255 / std of the unrounded clip.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple, Sequence

import ml_collections
import numpy as np
import tensorflow as tf

from mmae_jax.config.validate import check_layout, check_read
from mmae_jax.data import augment, clip_layout
from mmae_jax.data.fusion import FRAME_STRATEGIES, fuse, fuse_read_frames, source_frames, to_uint8
from mmae_jax.data.render import render_spectrograms

Example = dict
"""One clip's values by name (``tf.Tensor`` s, and whatever the decoder reads)."""
ClipOp = Callable[[Example], Example]
FrameReader = Callable[[np.ndarray], tf.Tensor]


class Decoder(NamedTuple):
    """How the stored media of one example are read.

    faces: (example, stored frame indices ``[k]``) -> uint8 ``[k, H, W, 3]``, only those frames.
    windows: example -> float32 ``[T0, F, W]`` spectrogram windows, window t centred on frame t.
    """

    faces: Callable[[Example, np.ndarray], tf.Tensor]
    windows: Callable[[Example], tf.Tensor]


def uniform_frame_indices(stored: int, wanted: int) -> np.ndarray:
    """Indices of ``wanted`` frames spread uniformly over ``stored`` (identity when equal)."""
    if stored < wanted:
        raise ValueError(f"clips hold {stored} frames but num_frames={wanted} were asked for")
    return np.floor((np.arange(wanted) + 0.5) * stored / wanted).astype(np.int32)


@dataclasses.dataclass(frozen=True)
class FramePlan:
    """Which stored frames and windows one read takes on one build.

    Attributes:
      face_frames: int32 ``[k]`` stored face frames decoded (k = 0: no face is shown).
      window_frames: int32 ``[n]`` indices into the stored windows, followed by the T / 2
        windows of a 'spanning' layout build when ``half_windows``; the masks draw over these n.
      half_windows: the read takes windows of ``spectrogram_half``.
    """

    face_frames: np.ndarray
    window_frames: np.ndarray
    half_windows: bool


def frame_plan(cfg: ml_collections.ConfigDict, positions: tuple[np.ndarray, np.ndarray], *,
               stored_frames: int, half_windows: bool) -> FramePlan:
    """The ``FramePlan`` of ``cfg`` on a build of ``stored_frames`` frames per clip.

    ``positions``: (face positions, spectrogram positions) among the T frames read;
    ``half_windows``: the build stores ``spectrogram_half`` (a 'spanning' layout build, read with
    ``frame_sampling="notebook_timing"`` and only so). ValueError for a config the build does not fit.
    """
    check_layout(cfg.frame_sampling, half_windows)
    face_positions, spec_positions = positions
    frames = uniform_frame_indices(stored_frames, cfg.num_frames)
    if cfg.frame_sampling == "notebook_timing":
        window_frames = clip_layout.window_indices(stored_frames, spec_positions, cfg.strategy,
                                                   cfg.num_frames)
        return FramePlan(frames[face_positions], window_frames, bool((window_frames >= stored_frames).any()))
    # uniform: all T windows are chosen (and masked) before the shown ones are rendered
    return FramePlan(frames[face_positions], frames, False)


def _plans(cfg: ml_collections.ConfigDict, positions: tuple[np.ndarray, np.ndarray]
           ) -> Callable[[Example], FramePlan]:
    """example -> its build's ``FramePlan``, from the static shape of its decoded ``windows``
    ``[T0, F, W]`` and whether it holds ``spectrogram_half``: worked out and checked once per
    build shape, while tf.data traces the chain (before any clip is read)."""
    plans: dict[tuple[int, bool], FramePlan] = {}

    def plan(data: Example) -> FramePlan:
        key = (int(data["windows"].shape[0]), "spectrogram_half" in data)
        if key not in plans:
            plans[key] = frame_plan(cfg, positions, stored_frames=key[0], half_windows=key[1])
        return plans[key]
    return plan


def compose(ops: Sequence[ClipOp]) -> ClipOp:
    """The ops applied in order."""
    def composed(data: Example) -> Example:
        for op in ops:
            data = op(data)
        return data
    return composed


def _clip_seeds(seed: tf.Tensor) -> list[tf.Tensor]:
    """The crop, flip, spectrogram-mask and rfas-order seeds of one clip's ``[2]`` seed."""
    return tf.unstack(tf.random.experimental.stateless_split(seed, 4))


def split_seed(data: Example) -> Example:
    """``seed`` -> ``crop_seed``, ``flip_seed``, ``mask_seed`` and ``order_seed`` (kept when given)."""
    crop, flip, mask, order = _clip_seeds(data["seed"])
    return {"order_seed": order, **data, "crop_seed": crop, "flip_seed": flip, "mask_seed": mask}


def decode(decoder: Decoder, plan: Callable[[Example], FramePlan]) -> ClipOp:
    """-> ``windows`` float32 ``[T0, F, W]`` and ``faces`` uint8 ``[k, H, W, 3]``, only the face
    frames of the build's plan."""
    def _decode(data: Example) -> Example:
        data = {**data, "windows": decoder.windows(data)}
        face_frames = plan(data).face_frames
        return {**data, "faces": decoder.faces(data, face_frames)} if len(face_frames) else data
    return _decode


def choose_windows(plan: Callable[[Example], FramePlan]) -> ClipOp:
    """``windows`` -> the plan's ``[n, F, W]`` (from the stored T0 windows and the half windows)."""
    def _choose(data: Example) -> Example:
        chosen = plan(data)
        windows = data["windows"]
        if chosen.half_windows:
            windows = tf.concat([windows, tf.cast(data["spectrogram_half"], tf.float32)], axis=0)
        return {**data, "windows": tf.gather(windows, chosen.window_frames)}
    return _choose


def _pixels(images: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """Pixel values 0..255 as ``dtype``: uint8 rounds float pixels once (half to even)."""
    if dtype == tf.uint8 and images.dtype != tf.uint8:
        return to_uint8(images, "tf")
    return tf.cast(images, dtype)


def face_images(cfg: ml_collections.ConfigDict, *, train: bool, dtype: tf.DType) -> ClipOp:
    """``faces`` ``[k, H, W, 3]`` -> ``[k, S, S, 3]`` pixels of ``dtype``: training takes the
    random resized crop and flip of ``cfg.augment`` (one draw per clip), evaluation resizes
    (nothing when H = W = S)."""
    size = cfg.image_size
    crop = train and cfg.augment.face_crop
    flip = train and cfg.augment.face_flip
    scale = tuple(cfg.augment.face_crop_scale) if crop else None
    ratio = tuple(cfg.augment.face_crop_ratio) if crop else None

    def _faces(data: Example) -> Example:
        faces = data["faces"]
        if crop:
            faces = augment.random_resized_crop(faces, data["crop_seed"], size, scale, ratio,
                                                flip_seed=data["flip_seed"] if flip else None)
        else:
            faces = augment.resize_faces(faces, size)
            if flip:
                faces = augment.random_flip(faces, data["flip_seed"])
        return {**data, "faces": _pixels(faces, dtype)}
    return _faces


def mask_windows(cfg: ml_collections.ConfigDict) -> ClipOp:
    """``windows`` with one time band and one frequency band of each masked (``cfg.augment``)."""
    time_fraction, freq_fraction = cfg.augment.spec_time_mask, cfg.augment.spec_freq_mask

    def _mask(data: Example) -> Example:
        return {**data, "windows": augment.mask_spectrograms(data["windows"], data["mask_seed"],
                                                             time_fraction, freq_fraction)}
    return _mask


def spectrogram_images(cfg: ml_collections.ConfigDict, shown: np.ndarray | None, *, dtype: tf.DType
                       ) -> ClipOp:
    """``windows`` -> ``spectrograms`` ``[m, S, S, 3]`` pixels of ``dtype``: the windows
    ``shown`` among those chosen (None: all)."""
    size, mode = cfg.image_size, cfg.spectrogram_render

    def _render(data: Example) -> Example:
        windows = data["windows"] if shown is None else tf.gather(data["windows"], shown)
        return {**data, "spectrograms": render_spectrograms(windows, size, mode, dtype)}
    return _render


def blank(key: str, cfg: ml_collections.ConfigDict, dtype: tf.DType) -> ClipOp:
    """``key`` := no images, ``[0, S, S, 3]`` of ``dtype`` (a modality the strategy does not show)."""
    shape = [0, cfg.image_size, cfg.image_size, 3]

    def _blank(data: Example) -> Example:
        return {**data, key: tf.zeros(shape, dtype)}
    return _blank


def arrange(strategy: str) -> ClipOp:
    """``faces`` and ``spectrograms`` read -> ``video`` ``[T, S, S, 3]``: the frames moved into
    ``strategy``'s order (rfas: permuted by ``order_seed``)."""
    def _arrange(data: Example) -> Example:
        return {**data, "video": fuse_read_frames(data["faces"], data["spectrograms"], strategy,
                                                  rng=data["order_seed"], backend="tf")}
    return _arrange


def mix(strategy: str, sfas_mode: str, cfas_resize: str) -> ClipOp:
    """``faces`` and ``spectrograms`` ``[T, S, S, 3]`` float -> ``video``, their float mix."""
    def _mix(data: Example) -> Example:
        return {**data, "video": fuse(data["faces"], data["spectrograms"], strategy, rng=data["order_seed"],
                                      sfas_mode=sfas_mode, cfas_resize=cfas_resize, backend="tf")}
    return _mix


def round_video(data: Example) -> Example:
    """``video`` float pixel values -> uint8 (half to even, clipped to 0..255)."""
    return {**data, "video": to_uint8(data["video"], "tf")}


def _source_ops(cfg: ml_collections.ConfigDict, decoder: Decoder, *, train: bool, dtype: tf.DType,
                positions: tuple[np.ndarray, np.ndarray] | None = None) -> list[ClipOp]:
    """seeds, decode, choose windows, faces, spectrograms: the ops before fusion, the config
    checked (and frozen: the ops keep the values it has now)."""
    cfg = ml_collections.FrozenConfigDict(cfg)
    check_read(cfg)
    positions = positions or source_frames(cfg.strategy, cfg.num_frames)
    plan = _plans(cfg, positions)
    face_positions, spec_positions = positions
    ops = [split_seed, decode(decoder, plan)]
    ops.append(face_images(cfg, train=train, dtype=dtype) if len(face_positions) else blank("faces", cfg, dtype))
    if not len(spec_positions):
        return ops + [blank("spectrograms", cfg, dtype)]
    ops.append(choose_windows(plan))
    if train and (cfg.augment.spec_time_mask > 0 or cfg.augment.spec_freq_mask > 0):
        ops.append(mask_windows(cfg))
    # uniform reads choose (and mask) all T windows, then render those shown; notebook_timing
    # reads choose only the windows shown
    shown = None if cfg.frame_sampling == "notebook_timing" else np.asarray(spec_positions, np.int32)
    return ops + [spectrogram_images(cfg, shown, dtype=dtype)]


def clip_fn(cfg: ml_collections.ConfigDict, decoder: Decoder, *, train: bool) -> ClipOp:
    """The chain that turns one example into ``video`` ``[T, S, S, 3]`` uint8 (T =
    ``cfg.num_frames``, S = ``cfg.image_size``); ValueError for a config that can not run.

    Args:
      cfg: the data config (strategy, num_frames, image_size, render, augment, ...).
      decoder: reads the stored faces and windows of an example.
      train: apply the training augmentations of ``cfg.augment``.

    The example must hold ``seed`` (``[2]`` int, the clip's augmentation and, unless
    ``order_seed`` is given, its rfas order), what ``decoder`` reads and, from a 'spanning' layout
    layout build, ``spectrogram_half``. Only the frames the strategy reads are decoded,
    augmented and rendered (half of each modality for fslf/ffls/ofos/rfas, one modality for
    face_only/audio_only), as uint8, then arranged; cfas and sfas read every frame as float
    pixels, mix them and round the mix.
    """
    if cfg.strategy in FRAME_STRATEGIES:
        return compose(_source_ops(cfg, decoder, train=train, dtype=tf.uint8) + [arrange(cfg.strategy)])
    return compose(_source_ops(cfg, decoder, train=train, dtype=tf.float32)
                   + [mix(cfg.strategy, cfg.sfas_mode, cfg.cfas_resize), round_video])


def sources_fn(cfg: ml_collections.ConfigDict, decoder: Decoder, *, train: bool,
               positions: tuple[np.ndarray, np.ndarray] | None = None,
               dtype: tf.DType = tf.float32) -> ClipOp:
    """The chain up to fusion: ``faces`` ``[k, S, S, 3]`` and ``spectrograms`` ``[m, S, S, 3]``
    of ``dtype`` (uint8 rounded, float32 exact) at ``positions`` (face positions, spectrogram
    positions among T; default: those the strategy shows). Other arguments as for ``clip_fn``."""
    return compose(_source_ops(cfg, decoder, train=train, dtype=dtype, positions=positions))


# ----------------------------------------------------------------------------- one clip at a time

def _read_with(read_faces: FrameReader) -> Decoder:
    """A decoder of examples that hold their windows decoded, with faces from ``read_faces``."""
    return Decoder(lambda _, indices: read_faces(indices), lambda data: data["spectrogram"])


def _one_clip(windows: tf.Tensor, seed: tf.Tensor, half_windows: tf.Tensor | None) -> Example:
    """The example of one clip whose windows are decoded."""
    example = {"spectrogram": windows, "seed": seed}
    return example if half_windows is None else {**example, "spectrogram_half": half_windows}


def source_images(read_faces: FrameReader, windows: tf.Tensor, cfg: ml_collections.ConfigDict,
                  seed: tf.Tensor, *, train: bool, positions: tuple[np.ndarray, np.ndarray] | None = None,
                  dtype: tf.DType = tf.uint8, half_windows: tf.Tensor | None = None
                  ) -> tuple[tf.Tensor, tf.Tensor]:
    """``sources_fn`` built and run for one clip: (faces, spectrogram images) of ``dtype``.

    ``read_faces``: stored frame indices ``[k]`` -> ``[k, H, W, 3]`` uint8; ``windows``:
    ``[T0, F, W]``; ``seed``: ``[2]``; ``half_windows``: a 'spanning' layout build's
    ``spectrogram_half`` ``[T0 / 2, F, W]``.
    """
    data = sources_fn(cfg, _read_with(read_faces), train=train, positions=positions,
                      dtype=dtype)(_one_clip(windows, seed, half_windows))
    return data["faces"], data["spectrograms"]


def clip_to_video(read_faces: FrameReader, windows: tf.Tensor, cfg: ml_collections.ConfigDict,
                  seed: tf.Tensor, *, train: bool, half_windows: tf.Tensor | None = None,
                  order_seed: tf.Tensor | None = None) -> tf.Tensor:
    """``clip_fn`` built and run for one clip: the fused uint8 ``[T, S, S, 3]``.

    ``order_seed``: the rfas order's ``[2]`` seed (default: drawn from ``seed``); other
    arguments as for ``source_images``.
    """
    example = _one_clip(windows, seed, half_windows)
    if order_seed is not None:
        example["order_seed"] = order_seed
    return clip_fn(cfg, _read_with(read_faces), train=train)(example)["video"]


def _eager_inputs(faces: np.ndarray, spectrogram: np.ndarray) -> tuple[FrameReader, tf.Tensor]:
    faces = tf.convert_to_tensor(faces, tf.uint8)
    return (lambda indices: tf.gather(faces, indices)), tf.convert_to_tensor(spectrogram, tf.float32)


def _with_strategy(cfg: ml_collections.ConfigDict, strategy: str | None) -> ml_collections.ConfigDict:
    if strategy is None:
        return cfg
    cfg = ml_collections.ConfigDict(cfg.to_dict())
    cfg.strategy = strategy
    return cfg


def _half(spectrogram_half: np.ndarray | None) -> tf.Tensor | None:
    return None if spectrogram_half is None else tf.convert_to_tensor(spectrogram_half, tf.float32)


def prepare_clip(faces: np.ndarray, spectrogram: np.ndarray, cfg: ml_collections.ConfigDict, *,
                 strategy: str | None = None, seed: int = 0,
                 spectrogram_half: np.ndarray | None = None) -> np.ndarray:
    """Evaluation-mode ``clip_to_video`` on NumPy arrays; returns ``[T, S, S, 3]`` uint8.

    ``faces``: stored ``[T0, H, W, 3]`` uint8; ``spectrogram``: ``[T0, F, W]``;
    ``spectrogram_half``: ``[T0 / 2, F, W]`` of a 'spanning' layout build; ``strategy`` overrides
    ``cfg.strategy``; ``seed`` draws the rfas order.
    """
    video = clip_to_video(*_eager_inputs(faces, spectrogram), _with_strategy(cfg, strategy),
                          tf.constant([seed, 0], tf.int64), train=False, half_windows=_half(spectrogram_half))
    return video.numpy()


def prepare_sources(faces: np.ndarray, spectrogram: np.ndarray, cfg: ml_collections.ConfigDict,
                    spectrogram_half: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Evaluation-mode ``source_images`` of all T frames of both modalities, float32 pixel
    values 0..255 (not rounded): fusing and rounding them gives ``prepare_clip``'s clip.
    ``spectrogram_half``: as for ``prepare_clip``."""
    every = np.arange(cfg.num_frames)
    images = source_images(*_eager_inputs(faces, spectrogram), cfg, tf.constant([0, 0], tf.int64),
                           train=False, positions=(every, every), dtype=tf.float32,
                           half_windows=_half(spectrogram_half))
    return tuple(image.numpy() for image in images)
