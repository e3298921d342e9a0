"""The training recipes and the shipped configs' shared shape.

A recipe is a set of values, listed here in full: ``multimae_der`` the original notebook's linear
probe, fact by fact (docs/reproduce.md gives each one's source); ``videomae`` VideoMAE's
fine-tuning recipe on today's data defaults (face crops, log-mel windows aligned with the
frames, augmentation). ``mmae-jax ... --print-config`` prints the config they give.
"""

from __future__ import annotations

import ml_collections

from mmae_jax.config import choices
from mmae_jax.config.args import parse_arg
from mmae_jax.config.defaults import base_config
from mmae_jax.errors import ConfigError

# The original notebook (MultiMAE_DER_FSLF.ipynb with its saved outputs).
MULTIMAE_DER = dict(
    mode="linear_probe", num_epochs=100, batch_size=16,
    optim=dict(
        lr=1e-2, min_lr=1e-2, warmup_epochs=0.0,       # Keras AdamW(1e-2): a constant learning rate
        weight_decay=0.05, decay_all=True,             # Keras decays every weight, biases and norms too
        eps=1e-7, b1=0.9, b2=0.999,                    # Keras's epsilon and betas
        layer_decay=1.0, label_smoothing=0.0, mixup_alpha=0.0, cutmix_alpha=0.0,
        grad_clip_norm=0.0, scale_lr_by_batch=False),
    model=dict(
        head_norm="fresh",                 # GlobalAveragePooling -> a NEW LayerNorm -> Dense(classes)
        head_layer_norm_eps=1e-6,          # LayerNormalization(epsilon=1e-6)
        head_init="glorot_uniform",        # Keras Dense's initialiser, zero bias
        fc_drop_rate=0.0, drop_path_rate=0.0,
        position_table=False,              # Sequential(finetune_videomae.layers[:-3]): patch embedding and
                                           # the 24 blocks only; the port adds its position table in
                                           # forward_features, which that Sequential never calls
        dtype="bfloat16"),                 # mixed precision: float32 weights, low-precision compute
    data=dict(
        builder_config="notebook_mfcc",    # whole frames from frame 0 at stride 3, 44.1 kHz peak-normalised
                                           # MFCC windows over the whole clip (RAVDESS: 7 classes)
        frame_sampling="notebook_timing",  # read the notebook_mfcc build as the notebook: 8+8 strategies take
                                           # frames 0, 6, ..., 42 and the 8 windows of 2/9 of the clip,
                                           # the others 16 frames and 16 windows of 2/17 (clip_layout.py)
        spectrogram_render="matshow",      # matplotlib matshow on a 4x4-inch figure, white margins
        rfas_order="per_clip",             # one RFAS order per clip, fixed for all epochs
        sfas_mode="wrap",                  # uint8 addition with overflow
        cfas_resize="bicubic",             # the stacked 2S x S picture halved by PIL's bicubic resize
        normalization="imagenet_mean_std0225",  # x / 255, ImageNet mean, std 0.225
        protocol="notebook",               # the notebook's class-stratified split
        augment=dict(face_crop=False, face_flip=False, spec_time_mask=0.0, spec_freq_mask=0.0)),
)
# VideoMAE's fine-tuning recipe (its run_class_finetuning.py defaults for Kinetics).
VIDEOMAE = dict(
    mode="finetune",
    optim=dict(lr=1e-3, min_lr=1e-6, warmup_epochs=5.0, weight_decay=0.05, decay_all=False, eps=1e-8,
               b1=0.9, b2=0.999, layer_decay=0.75, label_smoothing=0.1, mixup_alpha=0.8,
               cutmix_alpha=1.0, scale_lr_by_batch=True),
    model=dict(drop_path_rate=0.1),
    data=dict(protocol="random_split"),    # the seeded random split
)
RECIPES = {"multimae_der": MULTIMAE_DER, "videomae": VIDEOMAE}
# VideoMAE's pre-training recipe: AdamW betas (0.9, 0.95), lr 1.5e-4 x batch / 256, weight decay
# 0.05, 40 warm-up epochs then cosine, tube masking at 0.9, normalised-pixel loss.
PRETRAINING = dict(
    task="pretraining", mode="finetune", num_epochs=800,
    optim=dict(lr=1.5e-4, min_lr=1e-5, warmup_epochs=40.0, weight_decay=0.05, b1=0.9, b2=0.95,
               layer_decay=1.0, label_smoothing=0.0, mixup_alpha=0.0, cutmix_alpha=0.0, scale_lr_by_batch=True),
    model=dict(mask_ratio=0.9, norm_pix_loss=True, drop_path_rate=0.0),
)
# A smoke run of the whole path: one epoch cut to 5 steps, logged at every step.
RUNLOCAL = dict(num_epochs=1, max_steps=5, log_every_steps=1)


def apply(config: ml_collections.ConfigDict, values: dict) -> ml_collections.ConfigDict:
    """Set ``values`` (nested dicts for the config's sections) on ``config``; returns it."""
    for key, value in values.items():
        if isinstance(value, dict):
            apply(config[key], value)
        else:
            config[key] = value
    return config


def apply_recipe(config: ml_collections.ConfigDict, recipe: str) -> None:
    """The values of ``RECIPES[recipe]`` on ``config``."""
    if recipe not in RECIPES:
        raise ConfigError(f"recipe={recipe!r} is not known", f"choose one of {', '.join(RECIPES)}")
    apply(config, RECIPES[recipe])


def apply_runlocal(config: ml_collections.ConfigDict) -> None:
    apply(config, RUNLOCAL)


def apply_pretraining_recipe(config: ml_collections.ConfigDict) -> None:
    apply(config, PRETRAINING)


# The ARGS of the real datasets' configs (configs/ravdess.py ...); an empty protocol or mode is the recipe's.
DATASET_ARGS = dict(recipe="multimae_der", strategy="fslf", protocol="", fold=0, variant="large", mode="", init="",
                    runlocal=False)


def dataset_config(dataset: str, arg: str | None, **data_fields) -> ml_collections.ConfigDict:
    """The config of a real dataset: ``base_config()``, the recipe, then the ARGS.

    ``arg`` keys (``DATASET_ARGS``): recipe (multimae_der | videomae), strategy, protocol (notebook |
    random_split | kfold | hicmae; default: the recipe's), fold, variant, mode (finetune | linear_probe;
    default: the recipe's), init (a model directory, or ``random``), runlocal (a tiny smoke run,
    from random weights unless init is given).
    """
    args = parse_arg(arg, **DATASET_ARGS)
    config = base_config()
    apply_recipe(config, args.recipe)
    config.data.update(dataset=dataset, strategy=args.strategy, fold=args.fold, **data_fields)
    config.data.protocol = args.protocol or config.data.protocol
    config.mode = args.mode or config.mode
    config.init = args.init
    config.model.variant = args.variant
    if args.runlocal:
        apply_runlocal(config)
        config.init = args.init or choices.RANDOM_INIT  # a smoke run of the path: no tiny weights exist to load
        config.model.variant = "tiny"
        config.data.image_size = 64
        config.batch_size = 4
        config.eval.batch_size = 8
    return config
