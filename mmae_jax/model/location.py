"""Where a model directory is: the folder given, or a finished run's ``final_model/``.

A model directory holds ``config.json`` and ``params/`` (``mmae_jax.model.io``); a training or
pre-training workdir holds one as ``final_model/`` once the run has finished.
"""

from __future__ import annotations

from pathlib import Path

from mmae_jax.errors import ConfigError

FINAL_MODEL = "final_model"


def resolve_model_dir(path: str | Path, option: str = "init") -> Path:
    """``path`` when it is a model directory (it has ``params/``), else its ``final_model/``.

    ``option`` names the setting that gave ``path`` in the one-line ConfigError raised for a
    file, a folder that is neither, or a missing path (e.g. ``init`` or ``checkpoint``).
    """
    path = Path(path)
    if (path / "params").is_dir():
        return path
    if (path / FINAL_MODEL / "params").is_dir():
        return path / FINAL_MODEL
    if path.is_file():
        raise ConfigError(f"{option}={path} is a file, not a model directory",
                          f"convert it first: mmae-jax convert --source {path} --output DIR, then {option}=DIR")
    raise ConfigError(f"{option}={path} is neither a model directory (config.json + params/) nor a "
                      f"finished run's workdir with {FINAL_MODEL}/",
                      "pass the folder written by `mmae-jax convert` or by training" if path.exists()
                      else "the path does not exist; check its spelling")
