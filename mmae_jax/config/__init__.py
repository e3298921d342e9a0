"""The run spec: its fields and defaults, the recipes, config-file arguments and the one validation.

Light by design: it imports neither TensorFlow nor the training code, so config files,
``--print-config`` and ``mmae-jax plan`` load fast, and the data, model and train modules
import their tables of allowed values from here.

- ``choices``: the allowed values of the named choices (strategies, renders, normalisations ...).
- ``defaults``: ``base_config()`` and ``default_data_config()``, every field with its default.
- ``recipes``: the training recipes as plain values, and the dataset configs' shape.
- ``args``: ``parse_arg``, the ``:ARGS`` of ``--config FILE:ARGS`` typed by their defaults.
- ``validate``: ``validate_spec`` and the checks that take a fact from outside the config
  (``validate_devices``, ``check_build``).
"""
