"""The media work of a clip build as an Apache Beam pipeline (through TFDS's Beam support).

A build runs on Beam when its ``DownloadConfig`` names a ``beam_runner`` or ``beam_options``
(``mmae-jax prepare ... --beam-options "runner=DirectRunner,direct_num_workers=2,..."``; the
same flag with ``runner=DataflowRunner`` / ``FlinkRunner`` / ``SparkRunner`` moves it to a
cluster). The clip list is made where the pipeline is built; each worker turns clips into
examples with the same ``media.clip.process_clip`` as the in-process pool and writes one JSON
record per clip (written / bad input, face found) next to the download folder, from which the
build report and ``info.metadata`` are made after the pipeline has run.
"""

from __future__ import annotations

import json
import logging
from typing import Iterator, Sequence

import tensorflow as tf
import tensorflow_datasets as tfds

from mmae_jax.data_prep.media import clip, faces
from mmae_jax.data_prep.media.errors import BadInputError

log = logging.getLogger(__name__)
beam = tfds.core.lazy_imports.apache_beam
RECORDS = "records"


def pipeline_options(text: str):
    """``"runner=DirectRunner,direct_num_workers=2"`` -> Beam ``PipelineOptions`` (flags ``--key=value``)."""
    flags = [f"--{item.strip()}" for item in text.split(",") if item.strip()]
    return beam.options.pipeline_options.PipelineOptions(flags)


class _ProcessClip(beam.DoFn):
    """ClipJob -> ``(clip_id, example)`` on the main output and one JSON record on ``RECORDS``."""

    def __init__(self, spec: clip.ClipSpec):
        self.spec = spec
        self.detector = None

    def setup(self):
        import cv2

        cv2.setNumThreads(1)
        if self.spec.framing == "face":
            self.detector = faces.make_detector(self.spec.detector)

    def process(self, job) -> Iterator:
        try:
            result = clip.process_clip(job.source, self.spec, self.detector)
        except BadInputError as error:
            log.warning("skipped %s (%s): %s", error.path, error.kind, error.reason)
            beam.metrics.Metrics.counter("clip_build", f"bad_input_{error.kind}").inc()
            yield beam.pvalue.TaggedOutput(RECORDS, json.dumps(
                dict(clip_id=job.clip_id, status="bad", path=error.path, kind=error.kind, reason=error.reason)))
            return
        beam.metrics.Metrics.counter("clip_build", "written").inc()
        yield beam.pvalue.TaggedOutput(RECORDS, json.dumps(
            dict(clip_id=job.clip_id, status="written", speaker=job.speaker, face_found=bool(result.face_found))))
        yield job.clip_id, clip.clip_example(job, result)


@beam.ptransform_fn
def ExamplesOfJobs(pipeline, jobs: Sequence, spec: clip.ClipSpec, records_prefix: str):  # noqa: N802 (Beam style)
    """The examples of ``jobs`` (a PCollection of ``(clip_id, example)``); per-clip records go to
    text files ``records_prefix-*``."""
    outputs = (pipeline
               | "ListClips" >> beam.Create(list(jobs))
               | "Spread" >> beam.Reshuffle()
               | "ProcessClips" >> beam.ParDo(_ProcessClip(spec)).with_outputs(RECORDS, main="examples"))
    _ = outputs[RECORDS] | "WriteRecords" >> beam.io.WriteToText(records_prefix)
    return outputs.examples


def read_records(records_prefix: str) -> list[dict]:
    """The per-clip records a pipeline wrote (any order)."""
    records = []
    for path in sorted(tf.io.gfile.glob(records_prefix + "*")):
        with tf.io.gfile.GFile(path) as handle:
            records.extend(json.loads(line) for line in handle if line.strip())
    return records


def clear_records(records_prefix: str) -> None:
    """Remove the records of an earlier run with the same prefix."""
    for path in tf.io.gfile.glob(records_prefix + "*"):
        tf.io.gfile.remove(path)
