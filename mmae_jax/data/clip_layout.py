"""Which stored frames and spectrogram windows a clip read takes, and in which rfas order.

- ``frame_sampling="uniform"`` (default): T frames spread over the stored ones, window t
  centred on frame t (an 'aligned' build).
- ``frame_sampling="notebook_timing"`` (a build with ``window_layout="spanning"``, builder configs
  ``notebook_mfcc`` / ``notebook_mfcc_10ms`` / ``notebook_mfcc_mono``): the stored clip holds T frames at stride 3 from frame 0, T
  windows (``spectrogram``) and T / 2 windows (``spectrogram_half``) spanning the whole clip.
  Strategies that read every frame of a modality (cfas, sfas, face_only, audio_only) take the
  T frames and the T windows; those that read every second frame (fslf, ffls, ofos, rfas)
  take the faces at even positions (frames at stride 6) and the T / 2 windows
  (``window_indices``). A 'spanning' layout build must be read this way and only it (``config.validate.check_layout``).
- ``rfas_order="per_clip"``: one rfas order per clip, drawn from its clip id, the same in
  every epoch (``clip_order_seed``), as the original notebook drew it once while
  preprocessing; ``per_step`` (default) draws it from each step's seed.

The notebook's matshow picture of the windows (``spectrogram_render="matshow"``) is drawn by
``render.render_matshow``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mmae_jax.config.choices import HALF_STRATEGIES


def window_indices(stored_windows: int, spec_positions: np.ndarray, strategy: str,
                   num_frames: int) -> np.ndarray:
    """Which stored windows a ``notebook_timing`` read shows at ``spec_positions``.

    Args:
      stored_windows: the windows the build stores per clip (its T windows, 2 / (T + 1) of the
        clip each; the T / 2 windows of ``spectrogram_half`` follow them).
      spec_positions: positions among T (``fusion.source_frames``, or all T for the sources
        that prediction fuses on the device).
      strategy: a strategy of ``HALF_STRATEGIES`` shows, at even position p, window p / 2 of the
        T / 2 set; any other (cfas, sfas, audio_only) window p of the T set. Odd positions of a
        half strategy, never shown, hold the T set's window.
      num_frames: T.

    Returns:
      int32 ``[len(spec_positions)]`` indices into ``[T windows; T / 2 windows]``.
    """
    if stored_windows != num_frames:
        raise ValueError(f"frame_sampling='notebook_timing' reads the stored frames as they are: the build "
                         f"holds {stored_windows} windows but num_frames={num_frames}")
    positions = np.asarray(spec_positions, np.int32)
    if strategy not in HALF_STRATEGIES:
        return positions
    return np.where(positions % 2 == 0, num_frames + positions // 2, positions).astype(np.int32)


def clip_order_seed(seed: int, clip_id: tf.Tensor) -> tf.Tensor:
    """``[2]`` int64 stateless seed of one clip's rfas order: from ``seed`` and a fingerprint of
    its clip id (a string scalar), so the same in every epoch and on every host."""
    fingerprint = tf.strings.to_hash_bucket_fast(clip_id, 2 ** 62)
    return tf.stack([tf.constant(seed, tf.int64), fingerprint])
