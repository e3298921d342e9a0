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
