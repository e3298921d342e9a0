"""The original notebook's load-time choices, as options of the input pipeline.

- ``frame_sampling="paper_timing"`` (a build with ``window_layout="paper"``, builder configs
  ``paper`` / ``paper_10ms``): the stored clip holds T frames at stride 3 from frame 0, T
  windows (``spectrogram``) and T / 2 windows (``spectrogram_half``) spanning the whole clip.
  Strategies that read every frame of a modality (cfas, sfas, face_only, audio_only) take the
  T frames and the T windows; those that read every second frame (fslf, ffls, ofos, rfas)
  take the faces at even positions (frames at stride 6) and the T / 2 windows
  (``windows_read``). A 'paper' build must be read this way and only it (``check_layout``).
- ``spectrogram_render="paper"``: matplotlib's ``matshow(mfcc.T, interpolation="nearest",
  aspect="auto", origin="lower")`` on a 4x4-inch figure with the axes off, shrunk to S x S
  (``render_matshow``).
- ``rfas_order="per_clip"``: one rfas order per clip, drawn from its clip id, the same in
  every epoch (``clip_order_seed``), as the original drew it once while preprocessing.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

# matplotlib's default subplot box (figure.subplot.left/right/bottom/top), as fractions of the
# figure: the plot of a 400 x 400 px figure covers columns 50..360 and rows 48..356.
AXES_LEFT, AXES_RIGHT, AXES_BOTTOM, AXES_TOP = 0.125, 0.9, 0.11, 0.88


FRAME_SAMPLINGS = ("uniform", "paper_timing")
RFAS_ORDERS = ("per_step", "per_clip")


def check_options(cfg) -> None:
    """ValueError for an unknown ``frame_sampling`` or ``rfas_order`` of a data config."""
    for name, known, default in (("frame_sampling", FRAME_SAMPLINGS, "uniform"),
                                 ("rfas_order", RFAS_ORDERS, "per_step")):
        if cfg.get(name, default) not in known:
            raise ValueError(f"unknown {name} {cfg.get(name)!r}; choose one of {known}")


HALF_STRATEGIES = ("fslf", "ffls", "ofos", "rfas")  # they show spectrograms at the even positions only


def check_layout(frame_sampling: str, has_half_windows: bool) -> None:
    """ValueError unless the data config reads the build the way it was made: ``paper_timing``
    exactly for a 'paper' layout build (the one that stores ``spectrogram_half``)."""
    if frame_sampling == "paper_timing" and not has_half_windows:
        raise ValueError("frame_sampling='paper_timing' needs a build made with window_layout='paper' "
                         "(builder config paper or paper_10ms: it stores spectrogram_half); "
                         "build it with `mmae-jax prepare <dataset> --config paper ...`")
    if frame_sampling != "paper_timing" and has_half_windows:
        raise ValueError("the stored clips follow the original's timing (a 'paper' build: frames from the "
                         "clip start, windows over the whole clip); read them with "
                         "frame_sampling='paper_timing' (recipe=paper sets it)")


def windows_read(windows: tf.Tensor, half_windows: tf.Tensor | None, spec_positions: np.ndarray,
                 strategy: str, num_frames: int) -> tf.Tensor:
    """The spectrogram windows at ``spec_positions`` under ``paper_timing``.

    Args:
      windows: ``[T, F, W]`` the T windows (2 / (T + 1) of the clip each).
      half_windows: ``[T / 2, F, W]`` the T / 2 windows (2 / (T / 2 + 1) each; ``check_layout``
        has made sure a paper_timing read has them).
      spec_positions: positions among T (``fusion.source_frames``, or all T for the sources
        that prediction fuses on the device).
      strategy: a strategy of ``HALF_STRATEGIES`` shows, at even position p, window p / 2 of the
        T / 2 set; any other (cfas, sfas, audio_only) window p of the T set. Odd positions of a
        half strategy, never shown, hold the T set's window.
      num_frames: T.

    Returns:
      ``[len(spec_positions), F, W]`` float32.
    """
    if int(windows.shape[0]) != num_frames:
        raise ValueError(f"frame_sampling='paper_timing' reads the stored frames as they are: the build "
                         f"holds {int(windows.shape[0])} windows but num_frames={num_frames}")
    positions = np.asarray(spec_positions, np.int32)
    if strategy not in HALF_STRATEGIES:
        return tf.gather(windows, positions)
    stack = tf.concat([tf.cast(windows, tf.float32), tf.cast(half_windows, tf.float32)], axis=0)
    return tf.gather(stack, np.where(positions % 2 == 0, num_frames + positions // 2, positions))


def clip_order_seed(seed: int, clip_id: tf.Tensor) -> tf.Tensor:
    """``[2]`` int64 stateless seed of one clip's rfas order: from ``seed`` and a fingerprint of
    its clip id (a string scalar), so the same in every epoch and on every host."""
    fingerprint = tf.strings.to_hash_bucket_fast(clip_id, 2 ** 62)
    return tf.stack([tf.constant(seed, tf.int64), fingerprint])


@functools.lru_cache(maxsize=None)
def plot_box(image_size: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) pixel bounds of the matshow plot in an S x S picture:
    224 -> rows 27..199, columns 28..202 (172 x 174)."""
    return (round((1 - AXES_TOP) * image_size), round((1 - AXES_BOTTOM) * image_size),
            round(AXES_LEFT * image_size), round(AXES_RIGHT * image_size))


def nearest_indices(source: int, target: int) -> np.ndarray:
    """int32 [target]: the source cell a nearest-neighbour picture of ``target`` pixels shows
    in pixel i: the cell under ``(i + 0.5) * source / target``, the left one on a cell edge
    (as matplotlib draws; data_prep's ``audio.picked_steps`` stores MFCC columns the same way)."""
    return (((2 * np.arange(target, dtype=np.int64) + 1) * source - 1) // (2 * target)).astype(np.int32)


def render_matshow(windows: tf.Tensor, image_size: int, table: np.ndarray) -> tf.Tensor:
    """``[T, F, W]`` windows -> ``[T, S, S, 3]`` the way the notebook drew them.

    Each window is min-max scaled on its own (matplotlib's default norm), its lowest row at
    the bottom (``origin="lower"``), coloured as matplotlib maps a value v to colour
    ``min(floor(256 v), 255)`` of the 256-colour ``table`` ([256, 3], its dtype is the
    output's), and drawn nearest-neighbour into the plot box of ``plot_box`` on white (255).
    """
    from mmae_jax.data.render import normalize_windows

    top, bottom, left, right = plot_box(image_size)
    bins, steps = int(windows.shape[1]), int(windows.shape[2])
    scaled = normalize_windows(tf.cast(windows, tf.float32))
    levels = tf.cast(tf.minimum(tf.floor(scaled * 256.0), 255.0), tf.int32)          # [T, F, W]
    rows = nearest_indices(bins, bottom - top)[::-1]                                    # origin lower
    cells = tf.gather(tf.gather(levels, rows, axis=1), nearest_indices(steps, right - left), axis=2)
    plot = tf.gather(tf.constant(table), cells)                                          # [T, h, w, 3]
    padding = [[0, 0], [top, image_size - bottom], [left, image_size - right], [0, 0]]
    return tf.pad(plot, padding, constant_values=tf.constant(255, plot.dtype))
