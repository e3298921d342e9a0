"""mmae_jax: a JAX/Flax reimplementation of MultiMAE-DER.

Stages (one folder each): ``model`` (Flax NNX VideoMAE), ``cli`` (the ``mmae-jax``
command). The preprocessing stage lives in the sibling package ``data_prep``.
"""

__version__ = "0.1.0"
