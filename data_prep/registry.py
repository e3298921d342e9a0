"""Builder classes by dataset name, and how to open a built dataset from a data directory."""

from __future__ import annotations

import importlib
from pathlib import Path

import tensorflow_datasets as tfds

BUILDER_MODULES = {
    "ravdess": "mmae_jax.data_prep.ravdess.ravdess_dataset_builder",
    "crema_d": "mmae_jax.data_prep.crema_d.crema_d_dataset_builder",
    "iemocap": "mmae_jax.data_prep.iemocap.iemocap_dataset_builder",
    "synthetic": "mmae_jax.data_prep.synthetic.synthetic_dataset_builder",
    "videos": "mmae_jax.data_prep.videos.videos_dataset_builder",
}


def builder_class(name: str) -> type[tfds.core.GeneratorBasedBuilder]:
    if name not in BUILDER_MODULES:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(BUILDER_MODULES)}")
    return importlib.import_module(BUILDER_MODULES[name]).Builder


def built_versions(config_dir: str | Path) -> list[Path]:
    """The version folders under ``config_dir`` that hold a finished build (a ``dataset_info.json``),
    oldest first by version number; [] when there are none."""
    folder = Path(config_dir)
    found = [d for d in folder.iterdir() if (d / "dataset_info.json").is_file()] if folder.is_dir() else []
    return sorted(found, key=lambda d: tfds.core.Version(d.name) if tfds.core.Version.is_valid(d.name)
                  else tfds.core.Version("0.0.0"))


def open_built(data_dir: str | Path, name: str, config: str = "logmel") -> tfds.core.DatasetBuilder:
    """A read-only builder of the newest build of ``name/config`` (no builder code needed):
    ``open_built(d, 'ravdess').as_dataset(split='data')``; label names are in
    ``.info.features['label'].names``, the build report in ``.info.metadata['report']``."""
    config_dir = Path(data_dir) / name / config
    versions = built_versions(config_dir)
    if not versions:
        command = prepare_command(name, config, data_dir=data_dir)
        raise FileNotFoundError(f"no built dataset under {config_dir}: run `{command}` first")
    return tfds.builder_from_directory(str(versions[-1]))


def prepare_command(name: str, config: str = "", data_dir: str | Path = "DATA_DIR",
                    manual_dir: str | Path = "RAW_DIR") -> str:
    """The ``mmae-jax prepare`` command line that builds ``name/config`` into ``data_dir``
    (``config`` empty: the builder's default); ValueError for an unknown dataset or config."""
    builder = builder_class(name)
    known = [c.name for c in builder.BUILDER_CONFIGS]
    config = config or known[0]
    if config not in known:
        raise ValueError(f"dataset {name!r} has no builder config {config!r}; known: {sorted(known)}")
    manual = "" if name == "synthetic" else f" --manual-dir {manual_dir}"
    return f"mmae-jax prepare {name} --config {config}{manual} --data-dir {data_dir}"
