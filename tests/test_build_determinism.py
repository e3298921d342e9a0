"""Deterministic builds: the same builder config, inputs and seed give the same stored bytes,
rendered mp4 files and split hashes (docs/data.md, "Deterministic builds")."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest
import tensorflow as tf

import media_factory as mf
from mmae_jax.data_prep import registry
from mmae_jax.data_prep.clip_builder import ClipBuilderConfig, canonical_example
from mmae_jax.data_prep.media import encode, faces
from mmae_jax.data_prep.synthetic import render
from mmae_jax.data_prep.synthetic.synthetic_dataset_builder import SyntheticConfig
from mmae_jax.config.defaults import default_data_config
from mmae_jax.data.split_files import SUMS_FILE, split_tables

pytestmark = pytest.mark.xdist_group("build_determinism")


def _files(folder: Path, pattern: str = "*") -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob(pattern)) if p.is_file()}


def _differing(first: dict[str, bytes], second: dict[str, bytes]) -> list[str]:
    return sorted(name for name in first.keys() | second.keys() if first.get(name) != second.get(name))


def _build(dataset: str, config, root: Path, workers: int, manual_dir: Path | None = None) -> tuple[dict, str, list]:
    """Build ``config`` under ``root``; returns (every stored file's bytes, the SHA256SUMS of its
    splits, the clips that fell back to a centre crop)."""
    import tensorflow_datasets as tfds

    builder = registry.builder_class(dataset)(data_dir=str(root / "data"), config=config, num_workers=workers)
    builder.download_and_prepare(download_dir=str(root / "downloads"), download_config=tfds.download.DownloadConfig(
        manual_dir=str(manual_dir) if manual_dir else None))
    data_cfg = default_data_config()
    data_cfg.update(dataset=dataset, data_dir=str(root / "data"), builder_config=config.name)
    return _files(Path(builder.data_dir)), split_tables(data_cfg)[SUMS_FILE], builder.report.face_fallbacks


def _assert_same_builds(first: tuple, second: tuple) -> None:
    (files_a, sums_a, _), (files_b, sums_b, _) = first, second
    assert any(name.endswith(".tfrecord-00000-of-00001") for name in files_a), sorted(files_a)
    assert _differing(files_a, files_b) == []
    assert sums_a == sums_b


def test_the_same_frames_encode_to_the_same_mp4_bytes(tmp_path):
    """libx264 otherwise picks a different bitstream from run to run for the same frames (with
    its former settings, 3 clips x 12 writes gave more than one file in 10 of 10 tries)."""
    spec = render.RenderSpec(num_actors=1, repetitions=1)
    for name in ("open_rising", "smile_falling", "flat_rising"):
        frames, audio = render.render_clip(render.make_actor(1, 0), name, spec, np.random.default_rng(0))
        written = {encode.write_video(tmp_path / "clip.mp4", frames, spec.fps, audio, spec.sample_rate).read_bytes()
                   for _ in range(12)}
        assert len(written) == 1, name


def test_the_kept_face_box_does_not_depend_on_the_detectors_box_order():
    """OpenCV's Haar cascade lists its boxes in an order that varies with its threads; of two
    boxes of the same size the top-most is kept, however they are listed."""
    frames = np.stack([mf.drawn_face_frames(1, 96, 96, seed)[0] for seed in range(4)])
    tied = np.array([[50, 40, 30, 30], [10, 5, 30, 30], [0, 0, 20, 20]])

    def crops(boxes):
        return faces.face_crops(frames, lambda frame: boxes, 16, detect_every=1).images

    reference = crops(tied[[1, 0, 2]])
    assert not np.array_equal(reference, crops(tied[[0]]))  # the two tied boxes crop differently
    for order in ([0, 1, 2], [2, 0, 1], [0, 2, 1]):
        np.testing.assert_array_equal(crops(tied[order]), reference)


def test_two_synthetic_builds_from_one_seed_are_byte_identical(tmp_path):
    """Render (mp4 encode), decode, foreground face detection, audio features and TFDS writing,
    twice from seed 3: the same mp4 files, stored files and split hashes. The records are in
    canonical form, so a build in another process (another protobuf map order) writes the same."""
    config = SyntheticConfig(name="tiny", num_actors=2, repetitions=1, seconds=1.0, num_frames=4, image_size=32,
                             seed=3)
    builds = [_build("synthetic", config, tmp_path / run, workers=1) for run in ("a", "b")]
    rendered = [_files(tmp_path / run / "downloads", "*.mp4") for run in ("a", "b")]
    assert len(rendered[0]) == 2 * 8 and _differing(*rendered) == []
    _assert_same_builds(*builds)
    assert builds[0][2] == []  # every clip's face was found
    shard = next(tmp_path.glob("a/data/synthetic/tiny/*/*.tfrecord-00000-of-00001"))
    records = [record.numpy() for record in tf.data.TFRecordDataset(str(shard))]
    assert len(records) == 16 and [i for i, record in enumerate(records) if record != canonical_example(record)] == []
    other_seed = _build("synthetic", dataclasses.replace(config, seed=4), tmp_path / "c", workers=1)
    assert other_seed[1] != builds[0][1]


def _photo_frames(count: int, height: int = 240, width: int = 320) -> np.ndarray:
    """uint8 [count, height, width, 3]: a photograph of a face (matplotlib's sample) drifting
    right on a grey background, for the Haar cascade."""
    photo = cv2.cvtColor(cv2.imread(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")),
                         cv2.COLOR_BGR2RGB)
    photo = cv2.resize(photo, (160, 188), interpolation=cv2.INTER_AREA)
    frames = np.full((count, height, width, 3), 90, np.uint8)
    for index, frame in enumerate(frames):
        frame[20:208, 40 + 4 * index:200 + 4 * index] = photo
    return frames


def test_two_ravdess_builds_of_the_same_files_are_byte_identical(tmp_path):
    """The real-dataset path (RAVDESS layout, Haar cascade on a photographed face and on a clip
    without one, log-mel windows), built twice from the same files."""
    manual = tmp_path / "raw"
    mf.write_video(manual / "Actor_01" / "01-01-03-01-01-01-01.mp4", _photo_frames(15), 15, mf.tone(220, 1.0))
    mf.write_video(manual / "Actor_02" / "01-01-05-01-01-01-02.mp4", mf.plain_frames(15, 64, 64, 128), 15,
                   mf.tone(330, 1.0))
    config = ClipBuilderConfig(name="tiny", num_frames=4, image_size=32, window_seconds=0.2)
    builds = [_build("ravdess", config, tmp_path / run, workers=1, manual_dir=manual) for run in ("a", "b")]
    _assert_same_builds(*builds)
    assert builds[0][2] == ["01-01-05-01-01-01-02"]  # Haar found the photographed face


_BUILD_IN_A_PROCESS = """
import sys
from mmae_jax.data_prep import registry
from mmae_jax.data_prep.synthetic.synthetic_dataset_builder import SyntheticConfig
config = SyntheticConfig(name="tiny", num_actors=3, repetitions=1, seconds=1.0, num_frames=4, image_size=32)
builder = registry.builder_class("synthetic")(data_dir=sys.argv[1] + "/data", config=config,
                                              num_workers=int(sys.argv[2]))
builder.download_and_prepare(download_dir=sys.argv[1] + "/downloads")
"""


@pytest.mark.slow
def test_synthetic_builds_in_two_processes_on_one_and_two_workers_are_byte_identical(tmp_path):
    """Each build in its own process (protobuf seeds its map order per process), one on one
    worker and one on two (rendering and clip processing in worker processes)."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    for run, workers in (("one", 1), ("two", 2)):
        subprocess.run([sys.executable, "-c", _BUILD_IN_A_PROCESS, str(tmp_path / run), str(workers)], env=env,
                       check=True, capture_output=True, timeout=300)
    stored = [_files(tmp_path / run / "data" / "synthetic") for run in ("one", "two")]
    assert any(name.endswith(".tfrecord-00000-of-00001") for name in stored[0]), sorted(stored[0])
    assert _differing(*stored) == []
    assert _differing(*[_files(tmp_path / run / "downloads", "*.mp4") for run in ("one", "two")]) == []
