"""The synthetic builder (render -> RAVDESS code path, on two worker processes) and `mmae-jax prepare`."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds

import media_factory as mf
from data_prep import protocols, registry
from data_prep.synthetic.synthetic_dataset_builder import SyntheticConfig
from mmae_jax.cli import main as cli_main

pytestmark = pytest.mark.xdist_group("data_prep_synthetic")


def _pitch_slope(spectrogram: np.ndarray) -> float:
    """Slope over windows of the strongest mel bin (the fundamental's harmonics move together)."""
    centroid = [(w.mean(axis=1) * np.arange(w.shape[0])).sum() / w.mean(axis=1).sum()
                for w in np.exp(spectrogram)]
    return float(np.polyfit(np.arange(len(centroid)), centroid, 1)[0])


def test_synthetic_build_is_real_mp4_through_the_ravdess_path(tmp_path):
    config = SyntheticConfig(name="tiny", num_actors=3, repetitions=1, seconds=1.5, num_frames=8, image_size=32)
    builder = registry.builder_class("synthetic")(data_dir=str(tmp_path / "data"), config=config, num_workers=2)
    builder.download_and_prepare(download_dir=str(tmp_path / "dl"))
    rendered = sorted((tmp_path / "dl" / "synthetic_ravdess" / "tiny").glob("Actor_*/*.mp4"))
    assert len(rendered) == 3 * 8 and rendered[0].name == "01-01-01-01-01-01-01.mp4"
    examples = list(tfds.as_numpy(builder.as_dataset(split="data")))
    assert len(examples) == 24 and builder.report.face_fallbacks == []
    names = builder.info.features["label"].names
    assert tuple(names) == protocols.SYNTHETIC_CLASSES
    for example in examples:
        name = names[example["label"]]
        assert int(example["clip_id"].decode().split("-")[2]) == names.index(name) + 1
        slope = _pitch_slope(example["spectrogram"])
        assert (slope > 0) == name.endswith("rising"), (example["clip_id"], slope)
        assert example["faces"].shape == (8, 32, 32, 3)
        # the crop is centred on the face: the face colour fills the middle of every crop
        assert example["faces"][:, 12:20, 12:20].mean() > 100


def test_prepare_command_builds_a_named_config(tmp_path, capsys):
    root = tmp_path / "raw"
    for emotion in (1, 5):
        mf.write_video(root / "Actor_03" / f"01-01-{emotion:02d}-01-01-01-03.mp4",
                       mf.drawn_face_frames(20, 64, 64), 15, mf.tone(300, 1.4))
    assert cli_main(["prepare", "ravdess", "--manual-dir", str(root), "--data-dir", str(tmp_path / "data"),
                     "--config", "whole_frame", "--workers", "1"]) == 0
    assert "ravdess/whole_frame is in" in capsys.readouterr().out
    built = registry.open_built(tmp_path / "data", "ravdess", "whole_frame")
    examples = list(tfds.as_numpy(built.as_dataset(split="data")))
    assert [e["faces"].shape for e in examples] == [(16, 224, 224, 3)] * 2
    assert [e["spectrogram"].shape for e in examples] == [(16, 128, 48)] * 2
    assert sorted(e["speaker"] for e in examples) == [3, 3]
