"""Experiment configs (ml_collections ``get_config(arg)`` files); installed as ``mmae_jax.configs``."""
