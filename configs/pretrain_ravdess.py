"""MAE pre-training on RAVDESS fused sequences with VideoMAE's recipe (labels unused).

    mmae-jax pretrain --config configs/pretrain_ravdess.py:strategy=fslf,variant=base \\
        --workdir runs/pretrain_ravdess --config.data.data_dir=/data/tfds \\
        --config.init=converted/videomae_base_pretrain     # continued pre-training (optional)

Fine-tune from it with ``configs/ravdess.py:init=runs/pretrain_ravdess``.
"""

from mmae_jax.train.config_defaults import apply_pretraining_recipe, dataset_config


def get_config(arg: str | None = None):
    config = dataset_config("ravdess", arg)
    apply_pretraining_recipe(config)
    return config
