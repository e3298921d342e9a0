"""The data config: every field the input pipeline reads, with its default."""

from __future__ import annotations

import ml_collections


def default_data_config() -> ml_collections.ConfigDict:
    """Defaults for ``make_train_iterator`` / ``make_eval_iterator`` (override per experiment)."""
    cfg = ml_collections.ConfigDict()
    # Where the stored dataset is: data_dir/dataset[/builder_config]/<version> (see source.py).
    cfg.dataset = "synthetic"
    cfg.data_dir = ""                 # empty: TFDS's default (~/tensorflow_datasets)
    cfg.builder_config = ""           # empty: the dataset's default config
    cfg.stored_split = "data"         # the one TFDS split every builder writes

    # Which clips are train / validation / test (assigned at load time, see source.py).
    cfg.protocol = "paper"            # paper (seeded random split) | notebook (the original's stratified split)
                                      # | kfold | hicmae (speaker-independent folds); data_prep/protocols.py
    cfg.fold = 0
    cfg.split_seed = 0
    cfg.split_dir = ""                # a folder of split files (`mmae-jax splits`) to read instead of drawing

    # What the model sees.
    cfg.strategy = "fslf"             # see mmae_jax.data.fusion.STRATEGIES
    cfg.num_frames = 16               # T; stored clips with more frames are subsampled uniformly
    cfg.image_size = 224              # S
    cfg.spectrogram_render = "viridis"  # viridis | gray | paper (the notebook's matshow, render.py)
    cfg.frame_sampling = "uniform"    # uniform | paper_timing (a 'paper' layout build, clip_layout.py)
    cfg.rfas_order = "per_step"       # per_step (a new order each time) | per_clip (fixed by clip id)
    cfg.normalization = "paper"       # paper | videomae
    cfg.sfas_mode = "mean"            # mean | clip | wrap (the original's uint8 overflow)
    cfg.cfas_resize = "mean"          # mean (row pairs) | bicubic (the original's PIL resize)

    # Training augmentation (evaluation never augments).
    cfg.augment = ml_collections.ConfigDict()
    cfg.augment.face_crop = True
    cfg.augment.face_crop_scale = (0.6, 1.0)    # area fraction of the random resized crop
    cfg.augment.face_crop_ratio = (0.75, 4 / 3)  # aspect ratio w / h
    cfg.augment.face_flip = True
    cfg.augment.spec_time_mask = 0.0            # max masked fraction of each window's time steps
    cfg.augment.spec_freq_mask = 0.0            # max masked fraction of each window's bins

    # Reading.
    cfg.seed = 0
    cfg.shuffle_buffer = 512          # in stored (still encoded) examples
    cfg.prefetch = 2                  # host batches
    cfg.num_parallel_calls = -1       # -1: tf.data.AUTOTUNE
    return cfg
