"""``mmae-jax prepare``: a folder without clips names the expected layout, ``.MP4`` files count,
and a re-run after clips were added says so instead of reusing the old build."""

from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow_datasets as tfds

import media_factory as mf
from mmae_jax.cli import main

pytestmark = pytest.mark.xdist_group("data_prep_builders")


def add_clip(root: Path, actor: int, emotion: int, suffix: str = ".mp4") -> None:
    name = f"01-01-{emotion:02d}-01-01-01-{actor:02d}"
    path = mf.write_video(root / f"Actor_{actor:02d}" / f"{name}.mp4", mf.drawn_face_frames(34, 48, 48, emotion),
                          15, mf.tone(200 + 50 * emotion, 34 / 15))
    if suffix != ".mp4":
        path.rename(path.with_suffix(suffix))


def prepare(raw: Path, data_dir: Path, *extra) -> int:
    return main(["prepare", "ravdess", "--manual-dir", str(raw), "--data-dir", str(data_dir),
                 "--config", "whole_frame", "--workers", "1", *extra])


def built_clips(data_dir: Path) -> list[str]:
    """The clip ids of the examples stored in the build."""
    version = next((data_dir / "ravdess" / "whole_frame").glob("*/dataset_info.json")).parent
    records = tfds.builder_from_directory(str(version)).as_dataset(split="data")
    return sorted(example["clip_id"].decode() for example in tfds.as_numpy(records))


def test_a_folder_without_clips_names_the_expected_layout(tmp_path, capsys):
    (tmp_path / "raw" / "videos").mkdir(parents=True)
    assert prepare(tmp_path / "raw", tmp_path / "tfds") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --manual-dir") and "Actor_" in err and "Traceback" not in err


def test_rerun_after_new_clips_says_so_and_rebuild_takes_them(tmp_path, capsys):
    raw, data_dir = tmp_path / "raw", tmp_path / "tfds"
    add_clip(raw, 1, 1)
    add_clip(raw, 2, 5, suffix=".MP4")
    assert prepare(raw, data_dir) == 0
    assert built_clips(data_dir) == ["01-01-01-01-01-01-01", "01-01-05-01-01-01-02"]     # .MP4 read
    add_clip(raw, 3, 8)
    capsys.readouterr()
    assert prepare(raw, data_dir) == 2
    err = capsys.readouterr().err
    assert "1 clips new" in err and "01-01-08-01-01-01-03" in err and "--rebuild" in err
    assert prepare(raw, data_dir, "--rebuild") == 0
    assert built_clips(data_dir) == ["01-01-01-01-01-01-01", "01-01-05-01-01-01-02", "01-01-08-01-01-01-03"]


def test_an_interrupted_rebuild_leaves_the_old_build(tmp_path, monkeypatch):
    from mmae_jax.data_prep.clip_builder import ClipDatasetBuilder

    raw, data_dir = tmp_path / "raw", tmp_path / "tfds"
    add_clip(raw, 1, 1)
    assert prepare(raw, data_dir) == 0
    version = next((data_dir / "ravdess" / "whole_frame").glob("*/dataset_info.json")).parent
    before = {p.relative_to(version): p.read_bytes() for p in version.rglob("*") if p.is_file()}
    add_clip(raw, 2, 5)
    original = ClipDatasetBuilder.download_and_prepare

    def interrupted(self, *args, **kwargs):          # Ctrl-C after the new build wrote its first files
        original(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(ClipDatasetBuilder, "download_and_prepare", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare(raw, data_dir, "--rebuild")
    assert {p.relative_to(version): p.read_bytes() for p in version.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in data_dir.iterdir()) == ["downloads", "ravdess"]     # no staging folder left
    assert not (data_dir / "ravdess" / "whole_frame" / ".prepare.lock").exists()


def test_a_second_prepare_of_the_same_dataset_is_refused(tmp_path, capsys):
    import json
    import os
    import socket
    import subprocess
    import sys

    raw, data_dir = tmp_path / "raw", tmp_path / "tfds"
    add_clip(raw, 1, 1)
    lock = data_dir / "ravdess" / "whole_frame" / ".prepare.lock"
    lock.parent.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(json.dumps({"pid": other.pid, "host": socket.gethostname(), "started": 0}))
        assert prepare(raw, data_dir) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: ") and f"in use by another prepare of this dataset (process {other.pid}" \
            in err[-1]
        assert not list(lock.parent.glob("*/dataset_info.json"))                  # nothing built
    finally:
        other.kill()
        other.wait()
    assert prepare(raw, data_dir) == 0                                            # its lock is stale now
    assert os.path.exists(lock.parent) and not lock.exists()
