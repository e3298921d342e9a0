"""The unlabeled-video builder (folder tree, CSV list, VoxCeleb2 speakers, bad files) and the
Apache Beam build of the clip builders (DirectRunner, 2 processes) against the in-process build."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

import media_factory as mf
from mmae_jax.data_prep import registry
from mmae_jax.data_prep.clip_builder import ClipBuilderConfig
from mmae_jax.data_prep.report import BuildReport
from mmae_jax.data_prep.videos import layout

pytestmark = pytest.mark.xdist_group("data_prep_builders")

TINY = dict(num_frames=4, image_size=32, detector="foreground", window_seconds=0.2)
VOX_CLIPS = ["id00012/21Uxsk56VDQ/00001", "id00012/21Uxsk56VDQ/00002", "id00012/zzYYxx00000/00001",
             "id10270/5r0dWxy17C8/00003"]


def _video(path: Path, seed: int, seconds: float = 1.0) -> None:
    fps = 15
    mf.write_video(path, mf.drawn_face_frames(int(seconds * fps), 48, 48, seed), fps,
                   mf.tone(150 + 40 * seed, seconds))


@pytest.fixture(scope="module")
def vox_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("voxceleb2")
    for seed, clip_id in enumerate(VOX_CLIPS):
        _video(root / f"{clip_id}.mp4", seed)
    (root / "id10270" / "5r0dWxy17C8" / "00004.mp4").write_bytes(os.urandom(2000))   # corrupt
    mf.write_video(root / "id10270" / "5r0dWxy17C8" / "00005.mp4", mf.drawn_face_frames(15, 48, 48), 15)  # no audio
    (root / "id10270" / "notes.txt").write_text("not a video")
    return root


def _examples(builder) -> dict:
    return {ex["clip_id"].decode(): ex for ex in tfds.as_numpy(builder.as_dataset(split="data"))}


def test_voxceleb2_layout_gives_speakers_and_other_layouts_unknown(tmp_path):
    assert layout.voxceleb_speaker(Path("id00012/21Uxsk56VDQ/00001.mp4")) == 12
    assert layout.voxceleb_speaker(Path("dev/mp4/id10270/5r0dWxy17C8/00003.mp4")) == 10270
    assert layout.voxceleb_speaker(Path("id00012/00001.mp4")) == -1          # no video folder
    assert layout.voxceleb_speaker(Path("talks/ted/clip.mp4")) == -1
    for name in ("id00001/v1/a.mp4", "id00001/v1/b.MKV", "x/y/readme.md", "x/c.avi"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    entries = layout.find_tree(tmp_path)
    assert [(e.clip_id, e.speaker) for e in entries] == [("id00001/v1/a", 1), ("id00001/v1/b", 1), ("x/c", -1)]


def test_csv_list_reads_paths_speakers_and_reports_bad_rows(tmp_path):
    listing = tmp_path / "list.csv"
    listing.write_text("path,speaker\nid00007/v/1.mp4,\nother/2.mp4,41\n,3\nother/3.mp4,abc\nother/2.mp4,41\n")
    report = BuildReport("videos")
    entries = layout.read_list(listing, report)
    assert [(e.clip_id, e.speaker, e.path) for e in entries] == [
        ("id00007/v/1", 7, tmp_path / "id00007/v/1.mp4"), ("other/2", 41, tmp_path / "other/2.mp4")]
    assert report.skipped_by_kind() == {"bad_list_row": 3}
    (tmp_path / "nopath.csv").write_text("file\na.mp4\n")
    with pytest.raises(ValueError, match="'path' column"):
        layout.read_list(tmp_path / "nopath.csv", BuildReport("videos"))


def test_videos_builder_writes_unlabeled_clips_with_speakers_and_skips_bad_files(vox_tree, tmp_path):
    builder = registry.builder_class("videos")(data_dir=str(tmp_path), config=ClipBuilderConfig(name="tiny", **TINY),
                                                num_workers=1)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(vox_tree)))
    examples = _examples(builder)
    assert sorted(examples) == VOX_CLIPS
    assert builder.info.features["label"].names == ["unlabeled"]
    assert {clip_id: int(ex["speaker"]) for clip_id, ex in examples.items()} == {
        VOX_CLIPS[0]: 12, VOX_CLIPS[1]: 12, VOX_CLIPS[2]: 12, VOX_CLIPS[3]: 10270}
    assert all(ex["label"] == 0 and ex["faces"].shape == (4, 32, 32, 3) for ex in examples.values())
    assert builder.report.skipped_by_kind() == {"corrupt": 1, "no_audio": 1}


def test_videos_builder_reads_a_csv_list(vox_tree, tmp_path):
    listing = tmp_path / "list.csv"
    listing.write_text("path,speaker\n" + "".join(f"{vox_tree / c}.mp4,{i}\n" for i, c in enumerate(VOX_CLIPS[:2])))
    builder = registry.builder_class("videos")(data_dir=str(tmp_path / "tfds"), video_list=str(listing),
                                                config=ClipBuilderConfig(name="tiny", **TINY), num_workers=1)
    builder.download_and_prepare()
    examples = _examples(builder)
    assert len(examples) == 2 and sorted(int(ex["speaker"]) for ex in examples.values()) == [0, 1]


def _exact_hashes_and_spectrograms(builder) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """Per clip: a hash of the exact fields (faces, label, speaker) and the float32 spectrogram.

    The spectrogram is compared with a tolerance: its mel projection is a float32 matrix product
    whose last bits depend on how many threads OpenBLAS uses, which differs between a Beam worker
    and the main process (measured: up to 1e-6 on log-mel values of order 10)."""
    hashes, spectrograms = {}, {}
    for clip_id, ex in _examples(builder).items():
        digest = hashlib.sha256()
        for key in ("faces", "label", "speaker"):
            digest.update(np.ascontiguousarray(ex[key]).tobytes())
        hashes[clip_id] = digest.hexdigest()
        spectrograms[clip_id] = ex["spectrogram"]
    return hashes, spectrograms


ROOT = Path(__file__).resolve().parents[1]
# `make install` builds it: apache-beam over the test environment (Beam pins older protobuf,
# pyarrow and pillow than the tested versions, so it has a venv of its own).
BEAM_PYTHON = ROOT / ".venv-beam" / "bin" / "python"


@pytest.mark.slow
def test_beam_build_on_two_processes_equals_the_in_process_build(vox_tree, tmp_path):
    if importlib.util.find_spec("apache_beam") is None:
        assert BEAM_PYTHON.exists(), f"{BEAM_PYTHON} is missing: run `make install` (it builds the Beam venv)"
        test_id = f"{Path(__file__).name}::test_beam_build_on_two_processes_equals_the_in_process_build"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        run = subprocess.run([str(BEAM_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", test_id],
                             cwd=Path(__file__).parent, env=env, capture_output=True, text=True, timeout=1200)
        assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout[-4000:] + run.stderr[-2000:]
        return
    from mmae_jax.data_prep.beam_build import pipeline_options

    config = ClipBuilderConfig(name="tiny", **TINY)
    local = registry.builder_class("videos")(data_dir=str(tmp_path / "local"), config=config, num_workers=1)
    local.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(vox_tree)))
    on_beam = registry.builder_class("videos")(data_dir=str(tmp_path / "beam"), config=config)
    options = pipeline_options("runner=DirectRunner,direct_num_workers=2,direct_running_mode=multi_processing")
    on_beam.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=str(vox_tree), beam_options=options))
    assert list((tmp_path / "beam" / "downloads" / "beam_records").glob("videos-tiny*"))  # it ran on Beam
    expected, expected_spectrograms = _exact_hashes_and_spectrograms(local)
    assert sorted(expected) == VOX_CLIPS
    hashes, spectrograms = _exact_hashes_and_spectrograms(on_beam)
    assert hashes == expected
    for clip_id, spectrogram in expected_spectrograms.items():
        np.testing.assert_allclose(spectrograms[clip_id], spectrogram, rtol=0, atol=1e-5, err_msg=clip_id)
    assert on_beam.report.skipped_by_kind() == local.report.skipped_by_kind() == {"corrupt": 1, "no_audio": 1}
    reopened = registry.open_built(tmp_path / "beam", "videos", "tiny")
    local_listed = registry.open_built(tmp_path / "local", "videos", "tiny").info.metadata["listed_clip_ids"]
    assert reopened.info.metadata["listed_clip_ids"] == local_listed
