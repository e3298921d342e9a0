"""The experiment config shared by every file under configs/, and the parsing of config args.

A config file's ``get_config(arg)`` starts from ``base_config()`` and sets what its dataset
needs; ``arg`` is ``key=value`` pairs separated by commas (e.g. ``strategy=ffls,fold=2``).
"""

from __future__ import annotations

import ml_collections

from mmae_jax.model.config import VideoMAEConfig

CONFIG_ARG_TYPES = {"strategy": str, "protocol": str, "fold": int, "variant": str, "mode": str,
                    "init": str, "runlocal": bool, "recipe": str}
MODES = ("finetune", "linear_probe")


def parse_config_arg(arg: str | None, defaults: dict) -> ml_collections.ConfigDict:
    """``'strategy=ffls,fold=2'`` -> ConfigDict over ``defaults``; unknown keys are an error."""
    values = dict(defaults)
    for item in filter(None, (arg or "").split(",")):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in CONFIG_ARG_TYPES or key not in defaults:
            raise ValueError(f"bad config arg {item!r}; expected key=value with key in {sorted(defaults)}")
        kind = CONFIG_ARG_TYPES[key]
        values[key] = raw.strip().lower() in ("1", "true", "yes") if kind is bool else kind(raw.strip())
    if values.get("mode", "finetune") not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {values['mode']!r}")
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
        lr=1e-3, min_lr=1e-6, warmup_epochs=5.0, weight_decay=0.05, b1=0.9, b2=0.999,
        layer_decay=0.75, label_smoothing=0.1, mixup_alpha=0.8, cutmix_alpha=1.0,
        grad_clip_norm=0.0, grad_accum_steps=1, scale_lr_by_batch=True))
    config.eval = ml_collections.ConfigDict(dict(every_epochs=1, batch_size=32, views=("identity",)))
    config.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, min_shard_size=2 ** 14))
    config.checkpoint = ml_collections.ConfigDict(dict(every_steps=500, keep=2))
    config.log_every_steps = 10
    return config


def apply_recipe(config: ml_collections.ConfigDict, recipe: str) -> None:
    """``paper``: the original's linear probe; ``videomae``: VideoMAE's fine-tuning recipe."""
    if recipe == "paper":
        config.mode = "linear_probe"
        config.num_epochs = 100
        config.batch_size = 16
        config.optim.update(lr=1e-2, weight_decay=0.05, warmup_epochs=0.0, min_lr=1e-2, layer_decay=1.0,
                            label_smoothing=0.0, mixup_alpha=0.0, cutmix_alpha=0.0, scale_lr_by_batch=False)
        config.model.drop_path_rate = 0.0
    elif recipe == "videomae":
        config.mode = "finetune"
        config.optim.update(lr=1e-3, weight_decay=0.05, warmup_epochs=5.0, min_lr=1e-6, layer_decay=0.75,
                            label_smoothing=0.1, mixup_alpha=0.8, cutmix_alpha=1.0, scale_lr_by_batch=True)
        config.model.drop_path_rate = 0.1
    else:
        raise ValueError(f"unknown recipe {recipe!r}; choose 'paper' or 'videomae'")


DATASET_DEFAULTS = dict(strategy="fslf", protocol="paper", fold=0, variant="large", mode="linear_probe",
                        init="", runlocal=False, recipe="paper")


def dataset_config(dataset: str, arg: str | None, **data_fields) -> ml_collections.ConfigDict:
    """The config of a real dataset; defaults reproduce the paper (ViT-L linear probe, paper split).

    ``arg`` keys: strategy, protocol (paper | kfold), fold, variant, mode (finetune |
    linear_probe), init (a model directory), runlocal (a tiny smoke run), recipe (paper |
    videomae: VideoMAE's fine-tuning recipe, which also sets mode=finetune unless mode is given).
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
    config.data.protocol = args.protocol
    config.data.fold = args.fold
    if args.runlocal:
        apply_runlocal(config)
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
    config.mode = "finetune"
    config.optim.update(lr=1.5e-4, min_lr=1e-5, warmup_epochs=40.0, weight_decay=0.05, b1=0.9, b2=0.95,
                        layer_decay=1.0, label_smoothing=0.0, mixup_alpha=0.0, cutmix_alpha=0.0,
                        scale_lr_by_batch=True)
    config.model.update(mask_ratio=0.9, norm_pix_loss=True, drop_path_rate=0.0)
    config.num_epochs = 800
