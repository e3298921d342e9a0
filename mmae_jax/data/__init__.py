"""Fusion strategies and the input pipeline: stored faces + spectrograms -> fused, sharded batches.

Modules: ``fusion`` (the strategies), ``render`` (spectrogram windows -> images),
``clip_layout`` (which stored frames and windows a read takes), ``normalize``, ``augment``, ``transform`` (one clip -> model input), ``source`` (the stored
TFDS dataset and each host's part of a split), ``splits`` (protocol hook), ``pipeline``
(tf.data and the global iterators), ``sharding`` (host batches -> jax.Array), ``config``.
"""
