"""The demo: the synthetic dataset, a tiny ViT fine-tuned from scratch with FSLF, on CPU.

    mmae-jax prepare synthetic --data-dir workdirs/demo/tfds
    mmae-jax train --config configs/demo.py --workdir workdirs/demo/run

Args as in the dataset configs (``strategy=face_only``, ``protocol=...``, ``runlocal=true``).
Evaluation is speaker-independent: the test actors are never seen in training.
"""

from mmae_jax.config.args import parse_arg
from mmae_jax.config.defaults import base_config
from mmae_jax.config.recipes import apply_runlocal

DEFAULTS = dict(strategy="fslf", protocol="kfold", fold=0, variant="tiny", mode="finetune", init="",
                runlocal=False)


def get_config(arg: str | None = None):
    args = parse_arg(arg, **DEFAULTS)
    config = base_config()
    config.mode = args.mode
    config.init = args.init
    config.model.variant = args.variant
    config.data.update(dataset="synthetic", data_dir="workdirs/demo/tfds", strategy=args.strategy,
                       protocol=args.protocol, fold=args.fold, image_size=64, num_frames=16,
                       shuffle_buffer=1024)
    config.data.augment.update(face_crop=False, face_flip=False)
    config.batch_size = 16
    config.num_epochs = 30
    config.optim.update(lr=1e-3, min_lr=1e-5, warmup_epochs=2.0, weight_decay=0.05, layer_decay=1.0,
                        label_smoothing=0.0, mixup_alpha=0.0, cutmix_alpha=0.0, scale_lr_by_batch=False)
    config.eval.update(every_epochs=5, batch_size=64)
    config.checkpoint.update(every_steps=200, keep=2)
    config.log_every_steps = 20
    if args.runlocal:
        apply_runlocal(config)
    return config
