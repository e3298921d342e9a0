"""What every builder shares: the config fields, the example features, and the generator that
runs the media code on all cores and reports bad input.

A concrete builder names its dataset (``DATASET``, a key of ``protocols``), lists its clips
(``list_clips``: a ClipJob per clip, bad annotation lines reported on the way) and maps its
configs' class sets to label names through ``protocols.class_names``. Everything else is here.

Every example (names are the contract with the input pipeline):
  faces        uint8   [T, S, S, 3]  JPEG-encoded frames (tfds.features.Video)
  spectrogram  float32 [T, F, W]     window t centred on frame t's time
  label        ClassLabel            emotion names of the config's class set
  speaker      int32                 actor / speaker id (see protocols for the encodings)
  clip_id      string                the source file's stem, or the IEMOCAP utterance id
All clips go into ONE split, ``data``; protocols are applied at load time.
"""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from data_prep import parallel, protocols
from data_prep.media.clip import ClipSource, ClipSpec
from data_prep.media.errors import BadInputError
from data_prep.report import BuildReport

SPLIT = "data"


@dataclasses.dataclass(eq=False)
class ClipBuilderConfig(tfds.core.BuilderConfig):
    """One way of turning clips into examples: the ``ClipSpec`` fields a dataset config may set
    (defaults are ``ClipSpec``'s; see there), plus ``class_set`` (a key of
    ``protocols.class_names``)."""

    num_frames: int = ClipSpec.num_frames
    image_size: int = ClipSpec.image_size
    framing: str = ClipSpec.framing
    detector: str = ClipSpec.detector
    face_margin: float = ClipSpec.face_margin
    window_seconds: float = ClipSpec.window_seconds
    features: str = ClipSpec.features
    mfcc_stride: float = ClipSpec.mfcc_stride
    peak_normalize: bool = ClipSpec.peak_normalize
    class_set: str = "default"

    def clip_spec(self) -> ClipSpec:
        """The ``ClipSpec`` of this config: every field the two share, the rest at its default."""
        shared = {field.name for field in dataclasses.fields(ClipSpec)} & {
            field.name for field in dataclasses.fields(self)}
        return ClipSpec(**{name: getattr(self, name) for name in shared})


def standard_configs(config_class: type[ClipBuilderConfig] = ClipBuilderConfig,
                     paper_class_set: str = "default") -> list[ClipBuilderConfig]:
    """The configs every dataset has, as ``config_class`` (whose own defaults fill the fields these
    do not set). ``paper`` / ``paper_typo`` follow the original (whole frames, peak-normalised MFCC;
    stride 0.01 s, or the original code's 0.0001 s)."""
    mfcc = dict(features="mfcc", peak_normalize=True)
    return [
        config_class(name="logmel", description="face crops + 128-bin log-mel windows (default)"),
        config_class(name="whole_frame", framing="whole_frame",
                          description="whole frames resized (no face crop) + log-mel windows"),
        config_class(name="mfcc_paper", description="face crops + the original's MFCC (stride 0.01 s)", **mfcc),
        config_class(name="paper", framing="whole_frame", class_set=paper_class_set,
                          description="the original's choices: whole frames + MFCC (stride 0.01 s)", **mfcc),
        config_class(name="paper_typo", framing="whole_frame", class_set=paper_class_set, mfcc_stride=0.0001,
                          description="as 'paper' with the original code's 0.0001 s MFCC stride", **mfcc),
    ]


@dataclasses.dataclass(frozen=True)
class ClipJob:
    """One clip to write: where it is and the metadata its example carries."""

    source: ClipSource
    label: str
    speaker: int
    clip_id: str


class ClipDatasetBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the RAVDESS, CREMA-D, IEMOCAP and synthetic builders.

    ``num_workers``: processes for the media work (None: every core; 1: in this process).
    After a build, ``report`` holds the BuildReport (also printed, and saved in
    ``info.metadata['report']`` with the clip list in ``info.metadata['clips']``).
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Faces and spectrogram windows written once for all fusion strategies."}
    BUILDER_CONFIGS = standard_configs()
    DATASET: str = ""

    def __init__(self, *, num_workers: int | None = None, **kwargs):
        self.num_workers = num_workers
        self.report: BuildReport | None = None
        super().__init__(**kwargs)

    def class_names(self) -> tuple[str, ...]:
        return protocols.class_names(self.DATASET, self.builder_config.class_set)

    def _info(self) -> tfds.core.DatasetInfo:
        spec = self.builder_config.clip_spec()
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "faces": tfds.features.Video(spec.faces_shape(), encoding_format="jpeg"),
                "spectrogram": tfds.features.Tensor(shape=spec.spectrogram_shape(), dtype=np.float32),
                "label": tfds.features.ClassLabel(names=self.class_names()),
                "speaker": tfds.features.Scalar(dtype=np.int32),
                "clip_id": tfds.features.Text(),
            }),
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        return {SPLIT: self._generate_examples(self.source_dir(dl_manager))}

    def source_dir(self, dl_manager: tfds.download.DownloadManager) -> Path:
        """The folder ``list_clips`` reads: the manual directory by default."""
        return Path(dl_manager.manual_dir)

    @abc.abstractmethod
    def list_clips(self, root: Path, report: BuildReport) -> list[ClipJob]:
        """Every clip under ``root`` with its label; unusable entries go to ``report``."""

    def _generate_examples(self, root: Path):
        report = BuildReport(self.name)
        jobs = self.list_clips(root, report)
        written: list[ClipJob] = []
        results = parallel.process_clips([job.source for job in jobs], self.builder_config.clip_spec(),
                                         self.num_workers, description=f"{self.name}/{self.builder_config.name}")
        for job, result in zip(jobs, results):
            if isinstance(result, BadInputError):
                report.bad_input(result)
                continue
            if not result.face_found:
                report.face_fallback(job.clip_id)
            written.append(job)
            report.written += 1
            yield job.clip_id, {"faces": result.faces, "spectrogram": result.spectrogram, "label": job.label,
                                "speaker": job.speaker, "clip_id": job.clip_id}
        self.info.metadata["clips"] = {"clip_id": [j.clip_id for j in written],
                                       "speaker": [j.speaker for j in written]}
        self.info.metadata["report"] = {"written": report.written, "skipped": report.skipped,
                                        "excluded": dict(report.excluded), "face_fallbacks": report.face_fallbacks}
        self.report = report
        report.print_summary()
