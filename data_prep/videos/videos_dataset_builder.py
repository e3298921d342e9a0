"""TFDS builder for an unlabeled video corpus (pre-training data), e.g. VoxCeleb2.

``mmae-jax prepare videos --manual-dir DIR --data-dir D`` where DIR is any folder tree of
videos or a CSV list of paths (see ``layout``); ``<speaker>/<video>/<clip>.mp4`` with speaker
folders ``idNNNNN`` (VoxCeleb2) gives speaker ids. The same face crops and spectrogram windows
as the labelled builders (the shared ``ClipDatasetBuilder`` and media code); bad files are
reported and skipped.

Examples have the labelled builders' features so every reader works unchanged; ``label`` has
the single class ``unlabeled`` (``UNLABELED``), which the pre-training corpus reader
(``mmae_jax.data.corpus``) recognises: every clip of such a dataset is a pre-training clip.
"""

from __future__ import annotations

from pathlib import Path

from mmae_jax.data_prep import clip_builder
from mmae_jax.data_prep.media.clip import ClipJob, ClipSource
from mmae_jax.data_prep.report import BuildReport
from mmae_jax.data_prep.videos import layout

UNLABELED = ("unlabeled",)


class Builder(clip_builder.ClipDatasetBuilder):
    """Any videos, no labels: ``label`` is always ``unlabeled``; speaker -1 when unknown."""

    DATASET = "videos"
    BUILDER_CONFIGS = clip_builder.standard_configs()
    MANUAL_DOWNLOAD_INSTRUCTIONS = ("Point --manual-dir at a folder of videos (any tree; VoxCeleb2's "
                                    "<speaker>/<video>/<clip>.mp4 gives speaker ids) or at a CSV file with a "
                                    "'path' column and an optional 'speaker' column.")

    def __init__(self, *, video_list: str | None = None, **kwargs):
        """``video_list``: a CSV list of videos to read instead of the manual directory."""
        self.video_list = video_list
        super().__init__(**kwargs)

    def class_names(self) -> tuple[str, ...]:
        return UNLABELED

    def source_dir(self, dl_manager) -> Path:
        """The CSV list when one was given, else the manual directory."""
        return Path(self.video_list) if self.video_list else Path(dl_manager.manual_dir)

    def list_clips(self, root: Path, report: BuildReport) -> list[ClipJob]:
        return [ClipJob(ClipSource(video=str(entry.path)), UNLABELED[0], entry.speaker, entry.clip_id)
                for entry in layout.find_videos(root, report)]
