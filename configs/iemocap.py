"""iemocap: the published notebook's setting by default (`recipe=multimae_der`: ViT-L frozen, a fresh
LayerNorm + Dense head, Keras AdamW lr 1e-2, 100 epochs, batch 16, the `notebook_mfcc` build, the
notebook's split; docs/reproduce.md); `recipe=videomae` for VideoMAE's fine-tuning recipe.

    mmae-jax train --config configs/iemocap.py:strategy=fslf,protocol=kfold,fold=0 --workdir DIR \\
        --config.data.data_dir=/path/to/tfds --config.init=/path/to/converted_videomae_l
"""

from mmae_jax.config.recipes import dataset_config


def get_config(arg: str | None = None):
    return dataset_config("iemocap", arg)
