"""Every field of the run spec with its default: ``base_config()`` (what the train loop reads)
and ``default_data_config()`` (what the input pipeline reads).

A config file starts from ``base_config()``, applies a recipe (mmae_jax/config/recipes.py) and
sets what its dataset needs; ``mmae-jax ... --print-config`` shows the result, every value that runs.
"""

from __future__ import annotations

import ml_collections

from mmae_jax.model.config import VideoMAEConfig


def default_data_config() -> ml_collections.ConfigDict:
    """Defaults for ``make_train_iterator`` / ``make_eval_iterator`` (override per experiment)."""
    data_cfg = ml_collections.ConfigDict()
    # Where the stored dataset is: data_dir/dataset[/builder_config]/<version> (see data/source.py).
    data_cfg.dataset = "synthetic"
    data_cfg.data_dir = ""                 # empty: TFDS's default (~/tensorflow_datasets)
    data_cfg.builder_config = ""           # empty: the dataset's default config
    data_cfg.stored_split = "data"         # the one TFDS split every builder writes

    # Which clips are train / validation / test (assigned at load time, see data/splits.py).
    data_cfg.protocol = "random_split"     # random_split (seeded, 50/25/25) | notebook (the original's stratified
                                           # split) | kfold | hicmae (speaker-independent folds); data_prep/protocols.py
    data_cfg.fold = 0
    data_cfg.split_seed = 0
    data_cfg.split_dir = ""                # a folder of split files (`mmae-jax splits`) to read instead of drawing

    # What the model sees (the allowed values: mmae_jax/config/choices.py).
    data_cfg.strategy = "fslf"             # STRATEGIES
    data_cfg.num_frames = 16               # T; stored clips with more frames are subsampled uniformly
    data_cfg.image_size = 224              # S
    data_cfg.spectrogram_render = "viridis"  # viridis | gray | matshow (the notebook's picture, render.py)
    data_cfg.frame_sampling = "uniform"    # uniform | notebook_timing (a 'spanning' layout build, clip_layout.py)
    data_cfg.rfas_order = "per_step"       # per_step (a new order each time) | per_clip (fixed by clip id)
    data_cfg.normalization = "imagenet_mean_std0225"  # imagenet_mean_std0225 (the original's) | videomae
    data_cfg.sfas_mode = "mean"            # mean | clip | wrap (the original's uint8 overflow)
    data_cfg.cfas_resize = "mean"          # mean (row pairs) | bicubic (the original's PIL resize)

    # Training augmentation (evaluation never augments).
    data_cfg.augment = ml_collections.ConfigDict()
    data_cfg.augment.face_crop = True
    data_cfg.augment.face_crop_scale = (0.6, 1.0)    # area fraction of the random resized crop
    data_cfg.augment.face_crop_ratio = (0.75, 4 / 3)  # aspect ratio w / h
    data_cfg.augment.face_flip = True
    data_cfg.augment.spec_time_mask = 0.0            # max masked fraction of each window's time steps
    data_cfg.augment.spec_freq_mask = 0.0            # max masked fraction of each window's bins

    # Reading.
    data_cfg.seed = 0
    data_cfg.shuffle_buffer = 512          # in stored (still encoded) examples
    data_cfg.prefetch = 2                  # host batches
    data_cfg.num_parallel_calls = -1       # -1: tf.data.AUTOTUNE
    return data_cfg


# VideoMAEConfig fields a config does not set: the variant gives the sizes, the data the classes
# and frames, the mode whether the backbone is frozen.
DERIVED_MODEL_FIELDS = ("variant", "embed_dim", "depth", "num_heads", "num_classes", "num_frames", "img_size",
                        "decoder_embed_dim", "decoder_depth", "decoder_num_heads", "freeze_backbone")


def model_fields(**overrides) -> ml_collections.ConfigDict:
    """The architecture switches of ``VideoMAEConfig`` that are not fixed by the variant or data."""
    defaults = {k: v for k, v in VideoMAEConfig().to_dict().items() if k not in DERIVED_MODEL_FIELDS}
    return ml_collections.ConfigDict({"variant": "base", **defaults, **overrides})


def base_config() -> ml_collections.ConfigDict:
    """Every field the train loop reads, with VideoMAE fine-tuning defaults."""
    config = ml_collections.ConfigDict()
    config.task = "classification"        # or pretraining (choices.TASK_COMMANDS)
    config.seed = 0
    config.mode = "finetune"              # or linear_probe: frozen backbone, only the head trains
    config.init = ""                      # a converted checkpoint or pre-training export to start from
    config.init_allow_partial = False     # True: train even when init leaves encoder tensors random
    config.model = model_fields()
    config.data = default_data_config()
    config.batch_size = 16                # global, over all devices and hosts
    config.num_epochs = 100
    config.max_steps = -1                 # > 0 stops early (tests, smoke runs)
    config.optim = ml_collections.ConfigDict(dict(
        lr=1e-3, min_lr=1e-6, warmup_epochs=5.0, weight_decay=0.05, decay_all=False, b1=0.9, b2=0.999, eps=1e-8,
        layer_decay=0.75, label_smoothing=0.1, mixup_alpha=0.8, cutmix_alpha=1.0,
        grad_clip_norm=0.0, grad_accum_steps=1, scale_lr_by_batch=True))
    config.eval = ml_collections.ConfigDict(dict(every_epochs=1, batch_size=32, views=("identity",)))
    config.mesh = ml_collections.ConfigDict(dict(slices=1, data=-1, fsdp=1, min_shard_bytes=2 ** 16))
    # allow_data_change: resume a run on data that differs from what it was trained on (recorded)
    config.checkpoint = ml_collections.ConfigDict(dict(every_steps=500, keep=2, allow_data_change=False))
    config.log_every_steps = 10
    return config
