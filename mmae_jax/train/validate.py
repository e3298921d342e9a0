"""The run spec validated at the entry of a command, with the facts only a run can supply.

``validate_experiment`` runs the one validation of mmae_jax/config/validate.py (every field
and relation), then the checks that need the machine: the mesh and batch against the devices,
``data.data_dir`` holding the build the data config reads (made absolute, so the saved config
still points at the data when read from another folder), and ``init`` naming a model
directory. It runs before a workdir is created or touched.
"""

from __future__ import annotations

from pathlib import Path

import jax
import ml_collections

from mmae_jax.config.choices import RANDOM_INIT
from mmae_jax.config.validate import check_build, validate_devices, validate_spec
from mmae_jax.data.source import stored_builder_dir
from mmae_jax.errors import ConfigError
from mmae_jax.model.location import resolve_model_dir as resolve_init


def validate_paths(config: ml_collections.ConfigDict) -> None:
    """``data.data_dir`` holds the built dataset (made absolute) of the layout the data config
    reads; ``init`` is a model directory."""
    data_cfg = config.data
    if data_cfg.data_dir and "://" not in data_cfg.data_dir:
        data_cfg.data_dir = str(Path(data_cfg.data_dir).expanduser().absolute())
    try:
        builder_dir = stored_builder_dir(data_cfg.data_dir, data_cfg.dataset, data_cfg.builder_config)
    except FileNotFoundError as error:
        raise ConfigError(f"data.data_dir={data_cfg.data_dir or '(TFDS default)'}: {error}") from error
    check_build(data_cfg, builder_dir)
    if config.init and config.init != RANDOM_INIT:
        resolve_init(config.init)


def init_path(init: str) -> str:
    """The model directory ``init`` names, or "" when there is none to load (unset or ``random``)."""
    return "" if init == RANDOM_INIT else init


def validate_experiment(config: ml_collections.ConfigDict, *, command: str | None = None,
                        device_count: int | None = None) -> None:
    """Every check of the run spec; raises ConfigError naming the field and the fix.

    ``command``: the command about to run it; ``device_count``: the run's devices (default:
    ``jax.device_count()``, every host's).
    """
    validate_spec(config, command=command)
    validate_devices(config, jax.device_count() if device_count is None else device_count)
    validate_paths(config)
