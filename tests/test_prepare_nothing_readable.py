"""``mmae-jax prepare`` on a folder whose every clip is broken: one error line, nothing built."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmae_jax.cli import main

pytestmark = pytest.mark.xdist_group("data_prep_builders")


def test_every_clip_unreadable_is_one_error_line_and_no_build(tmp_path, capsys):
    raw = tmp_path / "raw"
    for actor in (1, 2):
        clip = raw / f"Actor_{actor:02d}" / f"01-01-03-01-01-01-{actor:02d}.mp4"
        clip.parent.mkdir(parents=True)
        clip.write_bytes(b"not a video")
    status = main(["prepare", "ravdess", "--manual-dir", str(raw), "--data-dir", str(tmp_path / "tfds"),
                   "--config", "whole_frame", "--workers", "1"])
    err = capsys.readouterr().err
    assert status == 2
    errors = [line[line.index("error: "):] for line in err.splitlines() if "error: " in line]
    assert len(errors) == 1, err
    assert errors[0].startswith("error: ravdess/whole_frame: none of the 2 clips listed could be read"), err
    assert "Traceback" not in err and "No examples were yielded" not in err
    assert not list((tmp_path / "tfds").rglob("dataset_info.json"))
