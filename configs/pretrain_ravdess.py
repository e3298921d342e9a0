"""MAE pre-training on RAVDESS fused sequences with VideoMAE's recipe (labels unused).

    mmae-jax pretrain --config configs/pretrain_ravdess.py:strategy=fslf,variant=base \\
        --workdir runs/pretrain_ravdess --config.data.data_dir=/data/tfds \\
        --config.init=converted/videomae_base_pretrain     # continued pre-training (optional)

Fine-tune from it with ``configs/ravdess.py:init=runs/pretrain_ravdess``. Pre-training on a
corpus (unlabeled videos plus other sets' train clips; never a test clip of the RAVDESS
protocol and fold given here, see mmae_jax/data/corpus.py)::

    mmae-jax prepare videos --manual-dir /data/voxceleb2/dev/mp4 --data-dir /data/tfds
    mmae-jax pretrain --config configs/pretrain_ravdess.py:protocol=kfold,fold=0,variant=base \\
        --workdir runs/pretrain_vox_f0 --config.data.data_dir=/data/tfds --config.corpus=videos,ravdess
"""

from mmae_jax.config.recipes import apply_pretraining_recipe, dataset_config


def get_config(arg: str | None = None):
    config = dataset_config("ravdess", arg)
    apply_pretraining_recipe(config)
    config.corpus = ""   # e.g. "videos" (VoxCeleb2 built by `mmae-jax prepare videos`) or "videos,crema_d:kfold:0"
    return config
