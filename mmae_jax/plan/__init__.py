"""Ahead-of-time plans: the step ``train`` runs, compiled here for a TPU topology or GPU target.

``topology.py`` turns a name the way users say it (``v5e-256``, ``2xv5e-256``, ``h100x8``)
into compile-only devices (libtpu or the CUDA plugin, no hardware); ``chips.py`` holds each
chip's published figures and its host; ``compile.py`` compiles the step of the training
assembly for those devices; ``memory.py``, ``hlo_text.py`` (collectives), ``roofline.py`` and
``input_rate.py`` read what came out; ``batch_search.py`` finds the largest per-chip batch that
fits; ``report.py`` prints and writes the result (``mmae-jax plan``).
"""
