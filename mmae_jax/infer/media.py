"""Raw media -> the arrays of one stored clip, exactly as the checkpoint's dataset was built.

A checkpoint's data config names its stored dataset (``dataset``) and builder config
(``builder_config``, empty for the builder's default). The builder config holds the media
settings (frames, image size, face framing, audio features), so one file is processed with
``mmae_jax.data_prep.media.clip.process_clip`` under that config's ``ClipSpec``: the same code path the
dataset build ran. This module is a thin adapter; it does not change data_prep.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Iterable, Mapping

from mmae_jax.data_prep.clip_builder import ClipBuilderConfig
from mmae_jax.data_prep.media import faces
from mmae_jax.data_prep.media.clip import ClipArrays, ClipSource, ClipSpec, process_clip

VIDEO_SUFFIXES = (".mp4", ".avi", ".flv", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def builder_class(dataset: str) -> type:
    """The data_prep builder class of ``dataset`` (``data_prep/<dataset>/<dataset>_dataset_builder.py``).

    A builder module imported for the first time here is kept out of the TFDS registry, so a
    stored dataset of the same name is still read from its files (not re-described by code).
    """
    import tensorflow_datasets as tfds

    module_name = f"mmae_jax.data_prep.{dataset}.{dataset}_dataset_builder"
    if module_name not in sys.modules:
        try:
            with tfds.core.registered.skip_registration():
                importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            raise ValueError(f"no data_prep builder for dataset {dataset!r} ({error}); pass the "
                             f"preprocessing explicitly, e.g. --builder-config ravdess/logmel") from error
    return sys.modules[module_name].Builder


def builder_config(dataset: str, name: str = "") -> ClipBuilderConfig:
    """The builder config ``name`` of ``dataset`` (empty: the builder's default, as TFDS picks it)."""
    builder = builder_class(dataset)
    configs = {config.name: config for config in builder.BUILDER_CONFIGS}
    name = name or builder.DEFAULT_BUILDER_CONFIG_NAME or builder.BUILDER_CONFIGS[0].name
    if name not in configs:
        raise ValueError(f"dataset {dataset!r} has no builder config {name!r}; known: {sorted(configs)}")
    return configs[name]


def clip_spec_for(data_cfg: Mapping, override: str = "") -> ClipSpec:
    """The ``ClipSpec`` a checkpoint's data config implies.

    ``override`` ("dataset/config", or "config" of the checkpoint's dataset) picks another
    builder config, e.g. for a model trained on a dataset without a data_prep builder.
    """
    dataset, name = data_cfg["dataset"], data_cfg.get("builder_config", "")
    if override:
        dataset, _, name = override.rpartition("/") if "/" in override else (dataset, "", override)
    return builder_config(dataset, name).clip_spec()


class ClipReader:
    """Reads raw files into stored-clip arrays under one ``ClipSpec`` (the detector is built once)."""

    def __init__(self, spec: ClipSpec):
        self.spec = spec
        self.detector = faces.make_detector(spec.detector) if spec.framing == "face" else None

    def __call__(self, video: str | Path, audio: str | Path | None = None) -> ClipArrays:
        """``faces`` uint8 [T0, S0, S0, 3] and ``spectrogram`` float32 [T0, F, W] of one file.

        Raises ``mmae_jax.data_prep.media.errors.BadInputError`` (``kind`` corrupt, no_audio, too_short,
        audio_too_short, ...) for a file that can not give a clip.
        """
        source = ClipSource(str(video), None if audio is None else str(audio))
        return process_clip(source, self.spec, self.detector)


def find_videos(paths: Iterable[str | Path]) -> list[Path]:
    """The files named, with every folder replaced by the video files under it (sorted, recursive).

    Named files are kept whatever their suffix (a bad one is reported when it is read).
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        else:
            found.append(path)
    return found
