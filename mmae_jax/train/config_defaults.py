"""The experiment config shared by every file under configs/, and the parsing of config args.

A config file's ``get_config(arg)`` starts from ``base_config()`` and sets what its dataset
needs; ``arg`` is ``key=value`` pairs separated by commas (e.g. ``strategy=ffls,fold=2``).
"""

from __future__ import annotations

import ml_collections

from mmae_jax.errors import ConfigError
from mmae_jax.model.config import VideoMAEConfig
from mmae_jax.train.validate import MODES, RANDOM_INIT, validate_config_args

CONFIG_ARG_TYPES = {"strategy": str, "protocol": str, "fold": int, "variant": str, "mode": str,
                    "init": str, "runlocal": bool, "recipe": str}


def parse_config_arg(arg: str | None, defaults: dict) -> ml_collections.ConfigDict:
    """``'strategy=ffls,fold=2'`` -> ConfigDict over ``defaults``; unknown keys are an error."""
    values = dict(defaults)
    for item in filter(None, (arg or "").split(",")):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in CONFIG_ARG_TYPES or key not in defaults:
            raise ConfigError(f"bad config arg {item!r}", f"use key=value with key one of {', '.join(sorted(defaults))}")
        kind = CONFIG_ARG_TYPES[key]
        try:
            values[key] = raw.strip().lower() in ("1", "true", "yes") if kind is bool else kind(raw.strip())
        except ValueError as error:
            raise ConfigError(f"bad config arg {item!r}", f"{key} takes an integer") from error
    validate_config_args(values)
    return ml_collections.ConfigDict(values)


def model_fields(**overrides) -> ml_collections.ConfigDict:
    """The architecture switches of ``VideoMAEConfig`` that are not fixed by the variant or data."""
    fixed = {"variant", "embed_dim", "depth", "num_heads", "num_classes", "num_frames", "img_size",
             "decoder_embed_dim", "decoder_depth", "decoder_num_heads", "freeze_backbone"}
    defaults = {k: v for k, v in VideoMAEConfig().to_dict().items() if k not in fixed}
    return ml_collections.ConfigDict({"variant": "base", **defaults, **overrides})


def base_config() -> ml_collections.ConfigDict:
    """Every field the train loop reads, with VideoMAE fine-tuning defaults."""
    from mmae_jax.data.config import default_data_config

    config = ml_collections.ConfigDict()
    config.task = "classification"        # or pretraining (mmae_jax/train/tasks.py: TASKS)
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


# The original notebook (MultiMAE_DER_FSLF.ipynb with its saved outputs), fact by fact; see
# docs/reproduce.md for each one's source and the differences that remain.
PAPER_OPTIM = dict(
    lr=1e-2, min_lr=1e-2, warmup_epochs=0.0,       # Keras AdamW(1e-2): a constant learning rate
    weight_decay=0.05, decay_all=True,             # Keras decays every weight, biases and norms too
    eps=1e-7, b1=0.9, b2=0.999,                    # Keras's epsilon and betas
    layer_decay=1.0, label_smoothing=0.0, mixup_alpha=0.0, cutmix_alpha=0.0,
    grad_clip_norm=0.0, scale_lr_by_batch=False)
PAPER_MODEL = dict(
    head_norm="fresh",                 # GlobalAveragePooling -> a NEW LayerNorm -> Dense(classes)
    head_layer_norm_eps=1e-6,          # LayerNormalization(epsilon=1e-6)
    head_init="glorot_uniform",        # Keras Dense's initialiser, zero bias
    fc_drop_rate=0.0, drop_path_rate=0.0,
    position_table=False,              # Sequential(finetune_videomae.layers[:-3]): patch embedding and
                                       # the 24 blocks only; the port adds its position table in
                                       # forward_features, which that Sequential never calls
    dtype="bfloat16")                  # mixed precision: float32 weights, low-precision compute
PAPER_DATA = dict(
    builder_config="paper",            # whole frames from frame 0 at stride 3, 44.1 kHz peak-normalised
                                       # MFCC windows over the whole clip (RAVDESS: 7 classes)
    frame_sampling="paper_timing",     # read the paper build as the notebook: 8+8 strategies take
                                       # frames 0, 6, ..., 42 and the 8 windows of 2/9 of the clip,
                                       # the others 16 frames and 16 windows of 2/17 (notebook.py)
    spectrogram_render="paper",        # matplotlib matshow on a 4x4-inch figure, white margins
    rfas_order="per_clip",             # one RFAS order per clip, fixed for all epochs
    sfas_mode="wrap",                  # uint8 addition with overflow
    cfas_resize="bicubic",             # the stacked 2S x S picture halved by PIL's bicubic resize
    normalization="paper")             # x / 255, ImageNet mean, std 0.225
PAPER_AUGMENT = dict(face_crop=False, face_flip=False, spec_time_mask=0.0, spec_freq_mask=0.0)

VIDEOMAE_OPTIM = dict(lr=1e-3, min_lr=1e-6, warmup_epochs=5.0, weight_decay=0.05, decay_all=False, eps=1e-8,
                      b1=0.9, b2=0.999, layer_decay=0.75, label_smoothing=0.1, mixup_alpha=0.8,
                      cutmix_alpha=1.0, scale_lr_by_batch=True)

RECIPES = ("paper", "videomae")


def apply_recipe(config: ml_collections.ConfigDict, recipe: str) -> None:
    """``paper``: the original notebook's linear probe, every fact of it (``PAPER_*``);
    ``videomae``: VideoMAE's fine-tuning recipe on today's data defaults (face crops, log-mel
    windows aligned with the frames, augmentation)."""
    if recipe == "paper":
        config.mode = "linear_probe"
        config.num_epochs = 100
        config.batch_size = 16
        config.optim.update(PAPER_OPTIM)
        config.model.update(PAPER_MODEL)
        config.data.update(PAPER_DATA)
        config.data.augment.update(PAPER_AUGMENT)
        config.data.protocol = "notebook"
    elif recipe == "videomae":
        config.mode = "finetune"
        config.optim.update(VIDEOMAE_OPTIM)
        config.model.drop_path_rate = 0.1
    else:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {RECIPES}")


DATASET_DEFAULTS = dict(strategy="fslf", protocol="notebook", fold=0, variant="large", mode="linear_probe",
                        init="", runlocal=False, recipe="paper")


def dataset_config(dataset: str, arg: str | None, **data_fields) -> ml_collections.ConfigDict:
    """The config of a real dataset; defaults reproduce the original notebook (``recipe=paper``).

    ``arg`` keys: strategy, protocol (notebook | paper | kfold | hicmae; default notebook with
    recipe=paper, paper with recipe=videomae), fold, variant, mode (finetune | linear_probe),
    init (a model directory, or ``random``), runlocal (a tiny smoke run, from random weights unless
    init is given), recipe (paper | videomae: VideoMAE's
    fine-tuning recipe, which also sets mode=finetune unless mode is given).
    """
    given = {item.partition("=")[0].strip() for item in (arg or "").split(",") if item}
    args = parse_config_arg(arg, DATASET_DEFAULTS)
    config = base_config()
    apply_recipe(config, args.recipe)
    if "mode" in given or args.recipe == "paper":
        config.mode = args.mode
    config.init = args.init
    config.model.variant = args.variant
    config.data.dataset = dataset
    config.data.update(data_fields)
    config.data.strategy = args.strategy
    config.data.protocol = args.protocol if "protocol" in given or args.recipe == "paper" else "paper"
    config.data.fold = args.fold
    if args.runlocal:
        apply_runlocal(config)
        config.init = args.init or RANDOM_INIT   # a smoke run of the path: no tiny weights exist to load
        config.model.variant = "tiny"
        config.data.image_size = 64
        config.batch_size = 4
        config.eval.batch_size = 8
    return config


def apply_runlocal(config: ml_collections.ConfigDict) -> None:
    """A smoke run of the whole path: one epoch cut to 5 steps, logged at every step."""
    config.num_epochs = 1
    config.max_steps = 5
    config.log_every_steps = 1


def apply_pretraining_recipe(config: ml_collections.ConfigDict) -> None:
    """VideoMAE's pre-training recipe: AdamW betas (0.9, 0.95), lr 1.5e-4 x batch / 256, weight
    decay 0.05, 40 warm-up epochs then cosine, tube masking at 0.9, normalised-pixel loss."""
    config.task = "pretraining"
    config.mode = "finetune"
    config.optim.update(lr=1.5e-4, min_lr=1e-5, warmup_epochs=40.0, weight_decay=0.05, b1=0.9, b2=0.95,
                        layer_decay=1.0, label_smoothing=0.0, mixup_alpha=0.0, cutmix_alpha=0.0,
                        scale_lr_by_batch=True)
    config.model.update(mask_ratio=0.9, norm_pix_loss=True, drop_path_rate=0.0)
    config.num_epochs = 800
