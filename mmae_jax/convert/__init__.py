"""Conversion of PyTorch VideoMAE checkpoints (official .pth, Hugging Face folders) to mmae_jax.

The only part of the library that imports torch (lazily, inside functions): install it with
``pip install 'mmae_jax[torch]'``. Modules: ``torch_loading`` (safe reading of .pth /
safetensors / Hugging Face folders), ``families`` (which checkpoint family and which model
config), ``name_map`` (explicit source -> target names and transposes), ``converter``
(checks every shape, reports every problem at once, writes a model directory) and
``torch_reference`` (an independent PyTorch VideoMAE with the official layout, for parity checks).
"""
