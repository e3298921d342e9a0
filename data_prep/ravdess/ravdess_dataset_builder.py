"""TFDS builder for RAVDESS. ``tfds build data_prep/ravdess --manual_dir=DIR [--config=NAME]``
where DIR holds ``Actor_01`` ... ``Actor_24``.

Configs: the standard ones (``logmel`` default, ``whole_frame``, ``mfcc_paper``, ``whole_frame_mfcc``,
``paper``, ``notebook_mfcc_10ms``, ``notebook_mfcc_mono``) plus ``logmel_7class``; ``paper*`` and ``*_7class`` use
the paper's 7 classes
(calm merged into neutral, all 1,440 clips kept: see docs/data.md).
"""

from __future__ import annotations

from pathlib import Path

from mmae_jax.data_prep import clip_builder, protocols
from mmae_jax.data_prep.media.clip import ClipJob
from mmae_jax.data_prep.ravdess import layout
from mmae_jax.data_prep.report import BuildReport


def emotion_label(emotion: int, class_set: str) -> str:
    """Label name of a RAVDESS emotion code (1-8) in ``class_set``."""
    name = protocols.RAVDESS_EMOTIONS[emotion - 1]
    if class_set == "paper7" and name == "calm":
        return "neutral"
    return name


class Builder(clip_builder.ClipDatasetBuilder):
    """RAVDESS audio-video speech: 1,440 clips of 24 actors, 8 emotions (or the paper's 7)."""

    DATASET = "ravdess"
    BUILDER_CONFIGS = clip_builder.standard_configs(paper_class_set="paper7") + [
        clip_builder.ClipBuilderConfig(name="logmel_7class", class_set="paper7",
                                       description="as logmel, with the paper's 7 classes (calm -> neutral)")]
    MANUAL_DOWNLOAD_INSTRUCTIONS = ("Download the RAVDESS audio-video speech zips (Video_Speech_Actor_XX.zip) "
                                    "from zenodo.org/record/1188976 and unpack them so that the manual "
                                    "directory holds Actor_01 ... Actor_24.")

    def list_clips(self, root: Path, report: BuildReport) -> list[ClipJob]:
        return [ClipJob(layout.clip_source(path), emotion_label(name.emotion, self.builder_config.class_set),
                                     name.actor, path.stem)
                for path, name in layout.find_clips(root, report)]
