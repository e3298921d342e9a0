"""MAE pre-training of the tiny ViT on the synthetic dataset's fused sequences (a few minutes on CPU).

    mmae-jax prepare synthetic --data-dir workdirs/demo/tfds
    mmae-jax pretrain --config configs/pretrain_demo.py --workdir workdirs/pretrain_demo
    mmae-jax train --config configs/demo.py:init=workdirs/pretrain_demo,mode=linear_probe --workdir ...

Args: strategy (which fused sequence to reconstruct), protocol, fold (pre-training reads the
train split only, and ``config.corpus`` adds unlabeled corpora or other labelled sets' train
clips, refused if any is a test clip of this protocol and fold), variant, init (e.g. a converted official pre-training checkpoint made with
``mmae-jax convert --keep-decoder``), runlocal.
"""

from mmae_jax.config.args import parse_arg
from mmae_jax.config.defaults import base_config
from mmae_jax.config.recipes import apply_pretraining_recipe, apply_runlocal

DEFAULTS = dict(strategy="fslf", protocol="kfold", fold=0, variant="tiny", init="", runlocal=False)


def get_config(arg: str | None = None):
    args = parse_arg(arg, **DEFAULTS)
    config = base_config()
    apply_pretraining_recipe(config)
    config.init = args.init
    config.corpus = ""          # extra sources, e.g. "videos" (see mmae_jax/data/corpus.py); empty: data's train split
    config.model.variant = args.variant
    config.data.update(dataset="synthetic", data_dir="workdirs/demo/tfds", strategy=args.strategy,
                       protocol=args.protocol, fold=args.fold, image_size=64, num_frames=16)
    config.data.augment.update(face_crop=False, face_flip=False)
    config.batch_size = 16
    config.num_epochs = 20
    config.optim.update(lr=1e-3, warmup_epochs=2.0, scale_lr_by_batch=False)
    config.model.mask_ratio = 0.75                 # 4x4 patches per frame: keep 4 visible
    config.eval.update(every_epochs=5, batch_size=32)
    config.log_every_steps = 20
    if args.runlocal:
        apply_runlocal(config)
    return config
