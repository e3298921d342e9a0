"""iemocap: the paper's setting by default (ViT-L, frozen backbone, AdamW lr 1e-2, 100 epochs,
batch 16, the paper's random split); `recipe=videomae` for VideoMAE's fine-tuning recipe.

    mmae-jax train --config configs/iemocap.py:strategy=fslf,protocol=kfold,fold=0 --workdir DIR \\
        --config.data.data_dir=/path/to/tfds --config.init=/path/to/converted_videomae_l
"""

from mmae_jax.train.config_defaults import dataset_config


def get_config(arg: str | None = None):
    return dataset_config("iemocap", arg)
