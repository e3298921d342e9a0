"""What every builder shares: the config fields, the example features, and the generator that
runs the media code on all cores and reports bad input.

A concrete builder names its dataset (``DATASET``, a key of ``protocols``), lists its clips
(``list_clips``: a ClipJob per clip, bad annotation lines reported on the way) and maps its
configs' class sets to label names through ``protocols.class_names``. Everything else is here.

The fields of every example are listed at ``media.clip.clip_example`` (the in-process pool and
the Beam build both write exactly that); their TFDS features are ``media_features`` and
``_info`` here. All clips go into ONE split, ``data``; protocols are applied at load time.
"""

from __future__ import annotations

import abc
import dataclasses
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow_datasets as tfds

from mmae_jax.data_prep import parallel, protocols
from mmae_jax.data_prep.media import audio
from mmae_jax.data_prep.media.clip import ClipJob, ClipSpec, clip_example
from mmae_jax.data_prep.media.errors import BadInputError
from mmae_jax.data_prep.report import BuildReport
from mmae_jax.errors import InputError

SPLIT = "data"


def uses_beam(download_config: tfds.download.DownloadConfig | None) -> bool:
    """Whether a build runs as an Apache Beam pipeline: its ``DownloadConfig`` names a
    ``beam_runner`` or ``beam_options`` (see data_prep/beam_build.py); otherwise the in-process pool."""
    return download_config is not None and (download_config.beam_runner is not None
                                            or download_config.beam_options is not None)


def with_fields_of(spec_class: type) -> Callable[[type], type]:
    """A class decorator (put it under ``@dataclasses.dataclass``): gives the class every field
    of the dataclass ``spec_class`` with its type and default, so a config lists none of them
    by hand and a new ``spec_class`` field is settable at once. Fields the class declares
    itself keep its own declaration."""

    def add_fields(cls: type) -> type:
        annotations = cls.__dict__.get("__annotations__", {})
        for field in dataclasses.fields(spec_class):
            if field.name not in annotations:
                annotations[field.name] = field.type
                setattr(cls, field.name, field.default)
        cls.__annotations__ = annotations
        return cls

    return add_fields


@dataclasses.dataclass(eq=False)
@with_fields_of(ClipSpec)
class ClipBuilderConfig(tfds.core.BuilderConfig):
    """One way of turning clips into examples: every ``ClipSpec`` field as a keyword (defaults
    are ``ClipSpec``'s; see there), plus ``class_set`` (a key of ``protocols.class_names``).
    A subclass may declare a ``ClipSpec`` field again to change its default."""

    class_set: str = "default"

    def clip_spec(self) -> ClipSpec:
        """The ``ClipSpec`` of this config: its value of every ``ClipSpec`` field."""
        return ClipSpec(**{field.name: getattr(self, field.name) for field in dataclasses.fields(ClipSpec)})


# What the original's preprocessing scripts do, as ClipSpec fields (see docs/data.md): whole
# frames, 16 frames every 3rd from the first, the overlapping windows over the whole clip at
# 44.1 kHz on moviepy's 2-channel samples, peak-normalised MFCC of the interleaved L, R samples
# at the published 0.0001 s stride, stored 310 columns wide.
PAPER_FIELDS = dict(framing="whole_frame", frame_sampling="notebook_timing", frame_stride=3, window_layout="spanning",
                    window_columns=audio.PAPER_WINDOW_COLUMNS, sample_rate=audio.PAPER_SAMPLE_RATE,
                    audio_channels="interleaved", features="mfcc", peak_normalize=True, mfcc_stride=0.0001)
# The notebook_mfcc configs' version: 1.1.0 computes the MFCC on the interleaved 2-channel samples;
# a 1.0.0 build of them mixed to mono (what 'notebook_mfcc_mono' stores now).
PAPER_VERSION = tfds.core.Version("1.1.0")
PAPER_RELEASE_NOTES = {"1.1.0": "MFCC of the interleaved 2-channel samples, as the original computed it."}


def standard_configs(config_class: type[ClipBuilderConfig] = ClipBuilderConfig,
                     paper_class_set: str = "default") -> list[ClipBuilderConfig]:
    """The configs every dataset has, as ``config_class`` (whose own defaults fill the fields these
    do not set). ``notebook_mfcc`` is the original's preprocessing (``PAPER_FIELDS``), ``notebook_mfcc_10ms`` the
    same with a 0.01 s MFCC stride, ``notebook_mfcc_mono`` the same on a mono mix (the MFCC of the sound
    rather than of its interleaved channels); ``whole_frame_mfcc`` keeps our aligned windows with
    the original's framing and features."""
    paper = dict(class_set=paper_class_set, version=PAPER_VERSION, release_notes=PAPER_RELEASE_NOTES)
    mfcc = dict(features="mfcc", peak_normalize=True)
    return [
        config_class(name="logmel", description="face crops + 128-bin log-mel windows (default)"),
        config_class(name="whole_frame", framing="whole_frame",
                     description="whole frames resized (no face crop) + log-mel windows"),
        config_class(name="mfcc_paper", description="face crops + the original's MFCC (stride 0.01 s)", **mfcc),
        config_class(name="whole_frame_mfcc", framing="whole_frame", class_set=paper_class_set,
                     description="whole frames + the original's MFCC (stride 0.01 s) in windows aligned with "
                                 "the frames", **mfcc),
        config_class(name="notebook_mfcc",
                     description="the original's preprocessing: frames 0, 3, ..., 45, overlapping windows over "
                                 "the clip at 44.1 kHz, MFCC of the interleaved 2-channel samples at the "
                                 "published 0.0001 s stride", **paper, **PAPER_FIELDS),
        config_class(name="notebook_mfcc_10ms", description="as 'notebook_mfcc' with a 0.01 s MFCC stride",
                     **paper, **{**PAPER_FIELDS, "mfcc_stride": 0.01}),
        config_class(name="notebook_mfcc_mono", description="as 'notebook_mfcc' with the MFCC of a mono mix",
                     **paper, **{**PAPER_FIELDS, "audio_channels": "mono"}),
    ]


def media_features(spec: ClipSpec) -> dict[str, tfds.features.FeatureConnector]:
    """The features ``process_clip`` fills under ``spec`` (``ClipArrays.stored_values``): faces,
    spectrogram (and spectrogram_half in the 'spanning' window layout)."""
    features = {"faces": tfds.features.Video(spec.faces_shape(), encoding_format="jpeg"),
                "spectrogram": tfds.features.Tensor(shape=spec.spectrogram_shape(), dtype=np.float32)}
    if spec.spectrogram_half_shape() is not None:
        features["spectrogram_half"] = tfds.features.Tensor(shape=spec.spectrogram_half_shape(), dtype=np.float32)
    return features


def canonical_example(serialized: bytes) -> bytes:
    """A serialized ``tf.train.Example`` in protobuf's deterministic form (feature names sorted)."""
    import tensorflow as tf

    return tf.train.Example.FromString(serialized).SerializeToString(deterministic=True)


class CanonicalExampleWriter(tfds.core.ExampleWriter):
    """Writes every example in ``canonical_example`` form. TFDS serialises the feature map in
    the order of protobuf's hash table, which is seeded per process, so without this the same
    examples written by two processes differ in bytes (docs/data.md, "Deterministic builds")."""

    def write(self, path, examples):
        return super().write(path, ((key, canonical_example(serialized)) for key, serialized in examples))


class ClipDatasetBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the RAVDESS, CREMA-D, IEMOCAP and synthetic builders.

    ``num_workers``: processes for the media work (None: every core; 1: in this process).
    After a build, ``report`` holds the BuildReport (also printed, and saved in
    ``info.metadata['report']``); ``info.metadata['listed_clip_ids']`` holds every clip id the
    listing found, written or skipped (``mmae-jax prepare`` compares it with the folder on a re-run).
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Faces and spectrogram windows written once for all fusion strategies."}
    BUILDER_CONFIGS = standard_configs()
    DATASET: str = ""

    def __init_subclass__(cls, **kwargs):
        """Names the builder's folder for TFDS (where it would read README.md, CITATIONS.bib):
        TFDS derives it from the module name, which names no folder in a checkout, where
        ``mmae_jax.data_prep`` is the repository's top-level data_prep/ (setup.py)."""
        super().__init_subclass__(**kwargs)
        cls.pkg_dir_path = tfds.core.Path(sys.modules[cls.__module__].__file__).parent

    def __init__(self, *, num_workers: int | None = None, **kwargs):
        self.num_workers = num_workers
        self.report: BuildReport | None = None
        super().__init__(**kwargs)

    def class_names(self) -> tuple[str, ...]:
        return protocols.class_names(self.DATASET, self.builder_config.class_set)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                **media_features(self.builder_config.clip_spec()),
                "label": tfds.features.ClassLabel(names=self.class_names()),
                "speaker": tfds.features.Scalar(dtype=np.int32),
                "clip_id": tfds.features.Text(),
            }),
            metadata=tfds.core.MetadataDict(),
        )

    def _example_writer(self) -> tfds.core.ExampleWriter:
        return CanonicalExampleWriter(file_format=self.info.file_format)

    def _generate_splits(self, dl_manager, download_config):
        self.on_beam = uses_beam(download_config)
        return super()._generate_splits(dl_manager, download_config)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = self.source_dir(dl_manager)
        if getattr(self, "on_beam", False):
            return {SPLIT: self._beam_examples(root, dl_manager)}
        return {SPLIT: self._generate_examples(root)}

    def source_dir(self, dl_manager: tfds.download.DownloadManager) -> Path:
        """The folder ``list_clips`` reads: the manual directory by default."""
        return Path(dl_manager.manual_dir)

    @abc.abstractmethod
    def list_clips(self, root: Path, report: BuildReport) -> list[ClipJob]:
        """Every clip under ``root`` with its label; unusable entries go to ``report``."""

    def _generate_examples(self, root: Path):
        report = BuildReport(self.name)
        jobs = self.list_clips(root, report)
        results = parallel.process_clips([job.source for job in jobs], self.builder_config.clip_spec(),
                                         self.num_workers, description=f"{self.name}/{self.builder_config.name}")
        for job, result in zip(jobs, results):
            if isinstance(result, BadInputError):
                report.bad_input(result)
                continue
            if not result.face_found:
                report.face_fallback(job.clip_id)
            report.written += 1
            yield job.clip_id, clip_example(job, result)
        self._finish_build(report, jobs)

    def _beam_examples(self, root: Path, dl_manager: tfds.download.DownloadManager):
        """The Beam transform of this build (see data_prep/beam_build.py); the report is made in
        ``_process_pipeline_result`` once the pipeline has run."""
        from mmae_jax.data_prep import beam_build  # imports apache_beam, which only a Beam build needs

        self._beam_report = BuildReport(self.name)
        self._beam_jobs = self.list_clips(root, self._beam_report)
        self._beam_records = str(dl_manager.download_dir / "beam_records" / f"{self.name}-{self.builder_config.name}")
        beam_build.clear_records(self._beam_records)
        return beam_build.ExamplesOfJobs(self._beam_jobs, self.builder_config.clip_spec(), self._beam_records)

    def _process_pipeline_result(self, pipeline_result) -> None:
        """After a Beam build: the per-clip records -> the same report and metadata as in-process."""
        from mmae_jax.data_prep import beam_build

        records = {record["clip_id"]: record for record in beam_build.read_records(self._beam_records)}
        report = self._beam_report
        for job in self._beam_jobs:
            record = records[job.clip_id]
            if record["status"] == "bad":
                report.bad_input(BadInputError(record["path"], record["kind"], record["reason"]))
                continue
            if not record["face_found"]:
                report.face_fallback(job.clip_id)
            report.written += 1
        self._finish_build(report, self._beam_jobs)

    def _finish_build(self, report: BuildReport, jobs: list[ClipJob]) -> None:
        """Store the listed clip ids and the report in ``info.metadata`` and print the summary."""
        self.info.metadata["listed_clip_ids"] = [job.clip_id for job in jobs]
        self.info.metadata["report"] = {"written": report.written, "skipped": report.skipped,
                                        "excluded": dict(report.excluded), "face_fallbacks": report.face_fallbacks}
        self.report = report
        report.print_summary()
        if jobs and not report.written:
            raise InputError(f"{self.name}/{self.builder_config.name}: none of the {len(jobs)} clips listed "
                             f"could be read ({len(report.skipped)} skipped as bad input, listed above)",
                             "fix or replace those files; nothing was built")
