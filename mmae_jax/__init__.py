"""mmae_jax: a JAX/Flax reimplementation of MultiMAE-DER.

Stages, one folder each (docs/architecture.md): ``model`` (Flax NNX VideoMAE, its MAE
pre-training model, parameter/FLOP counts), ``convert`` (PyTorch / Hugging Face checkpoints in
and out, parity; the only code that imports torch), ``data`` (stored dataset -> fused uint8
batches), ``train`` (train loop, tasks, evaluation, checkpoints), ``infer`` (prediction on raw
videos, modality attribution) and ``cli`` (the ``mmae-jax`` command). The preprocessing stage
(raw videos -> TFDS) lives in the sibling package ``data_prep``.
"""

__version__ = "0.1.0"
