"""Every expected user mistake prints one line ``error: <what> (<how to fix>)``, exits 2 and
leaves nothing written; an unexpected failure keeps its traceback. In-process calls of
``mmae_jax.cli.main`` (no training)."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

from stored_dataset import DEMO, save_tiny_model, tiny_argv


def fails_with(capsys, argv, *fragments) -> str:
    """Run ``mmae-jax argv``; assert exit 2 and one ``error:`` line holding every fragment."""
    from mmae_jax.cli import main

    rc = main(argv)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2, err
    errors = [line for line in err if line.startswith("error: ")]        # besides a progress bar
    assert len(errors) == 1 and err[-1] == errors[0] and not any("Traceback" in line for line in err), err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


# ---- experiment configs: checked before a model is built or data read ------------------------

@pytest.mark.parametrize("extra, fragments", [
    (["--config.nonexistent=3"], ["unknown config field --config.nonexistent"]),
    (["--config.data.strategy=fsl"], ["data.strategy='fsl' is not known", "fslf"]),
    (["--config.data.fold=9", "--config.data.protocol=kfold"], ["folds 0..5, not fold=9"]),
    (["--config.model.variant=giant"], ["model.variant='giant' is not known"]),
    (["--config.batch_size=0"], ["batch_size=0 must be a positive integer"]),
    (["--config.num_epochs=0"], ["num_epochs=0 must be a positive integer"]),
    (["--config.batch_size=abc"], ["--config.batch_size=abc"]),
])
def test_bad_config_values(data_dir, tmp_path, capsys, extra, fragments):
    fails_with(capsys, ["train", "--workdir", str(tmp_path / "run"), *tiny_argv(data_dir, *extra)], *fragments)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("arg, fragment", [
    ("strategy=fsl", "strategy='fsl' is not known"),
    ("bogus=1", "bad config arg 'bogus=1'"),
    ("fold=x", "fold takes an integer"),
    ("variant=giant", "variant='giant' is not known"),
])
def test_bad_config_file_args(data_dir, tmp_path, capsys, arg, fragment):
    argv = tiny_argv(data_dir)
    argv[1] = f"{DEMO}:{arg}"
    fails_with(capsys, ["train", "--workdir", str(tmp_path / "run"), *argv], fragment)


def test_missing_config_file_is_named(tmp_path, capsys):
    fails_with(capsys, ["train", "--workdir", str(tmp_path / "run"), "--config", str(tmp_path / "nope.py")],
               "nope.py")


def test_missing_data_dir(tmp_path, capsys):
    fails_with(capsys, ["train", "--workdir", str(tmp_path / "run"), *tiny_argv(tmp_path / "nodata")],
               "is not built under", "mmae-jax prepare")
    assert not (tmp_path / "run").exists()


def test_kfold_with_a_fold_the_dataset_lacks(data_dir, tmp_path, capsys):
    fails_with(capsys, ["kfold", "--workdir", str(tmp_path), "--folds", "0,9", *tiny_argv(data_dir)],
               "--folds 0,9", "0..5")


# ---- the machine: read-only workdir, full disk ------------------------------------------------

def test_read_only_workdir(data_dir, tmp_path, capsys, monkeypatch):
    from mmae_jax.train import workdir

    def refuse(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(workdir.Path, "write_text", refuse)
    fails_with(capsys, ["train", "--workdir", str(tmp_path / "run"), *tiny_argv(data_dir)],
               "Read-only file system", "choose a writable folder")


def test_full_disk_inside_a_library_error_is_one_line(data_dir, tmp_path, capsys, monkeypatch):
    from mmae_jax.train import checkpointing

    def full(*args, **kwargs):
        try:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "checkpoints"))
        except OSError as error:
            raise RuntimeError("async save failed: 273 lines of tensorstore detail") from error

    monkeypatch.setattr(checkpointing, "save", full)
    fails_with(capsys, ["train", "--workdir", str(tmp_path / "run"), *tiny_argv(data_dir)],
               "No space left on device", "free some space")


def test_an_unexpected_error_keeps_its_traceback(monkeypatch):
    from mmae_jax.cli import main
    from mmae_jax.cli import model_info

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(model_info, "run", broken)
    with pytest.raises(ZeroDivisionError):
        main(["model-info"])


# ---- model directories ------------------------------------------------------------------------

def trained_model(directory: Path, **metadata_changes) -> Path:
    from mmae_jax.model.config import VideoMAEConfig
    from mmae_jax.model.io import build_model, save_model

    cfg = VideoMAEConfig.from_variant("tiny", num_classes=4, num_frames=4, img_size=32)
    metadata = dict(class_names=[f"class{i}" for i in range(4)], source="training",
                    data=dict(dataset="ravdess", builder_config="whole_frame", num_frames=4, image_size=32,
                              strategy="fslf", sfas_mode="mean", normalization="imagenet_mean_std0225"))
    for key, value in metadata_changes.items():
        metadata[key] = value
    return save_model(directory, build_model(cfg, "classifier"), cfg, kind="classifier", metadata=metadata)


def test_shortened_class_names_refuse_to_predict(tmp_path, capsys):
    model = trained_model(tmp_path / "m", class_names=["a", "b", "c"])
    fails_with(capsys, ["predict", str(tmp_path / "x.mp4"), "--checkpoint", str(model)],
               "3 class_names for a head of 4 classes")


def test_data_config_that_no_longer_fits_the_model_refuses_to_predict(tmp_path, capsys):
    model = trained_model(tmp_path / "m", data=dict(dataset="ravdess", num_frames=8, image_size=32))
    fails_with(capsys, ["predict", str(tmp_path / "x.mp4"), "--checkpoint", str(model)],
               "data.num_frames 8 but the model reads 4")


@pytest.fixture
def clips(tmp_path):
    path = tmp_path / "clips.npy"
    np.save(path, np.zeros((2, 3, 4, 32, 32), np.float32))
    return path


@pytest.mark.parametrize("damage", ["emptied", "corrupt"])
def test_damaged_params_folder(tmp_path, capsys, clips, damage):
    model = save_tiny_model(tmp_path / "m")
    files = [p for p in (model / "params").rglob("*") if p.is_file()]
    for path in files:
        if damage == "emptied":
            path.unlink()
        elif path.stat().st_size > 1000:
            path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))
    fails_with(capsys, ["forward", "--checkpoint", str(model), "--input", str(clips), "--output",
                        str(tmp_path / "out.npy")], "params can not be read", "damaged")


def test_forward_input_mistakes(tmp_path, capsys, clips):
    model = save_tiny_model(tmp_path / "m")
    run = ["forward", "--checkpoint", str(model), "--output", str(tmp_path / "out.npy"), "--input"]
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((0, 3, 4, 32, 32), np.float32))
    fails_with(capsys, run + [str(empty)], "the batch is empty")
    nan = tmp_path / "nan.npy"
    values = np.zeros((1, 3, 4, 32, 32), np.float32)
    values[0, 1, 2, 3, 4] = np.nan
    np.save(nan, values)
    fails_with(capsys, run + [str(nan)], "1 values are NaN or infinite")
    fails_with(capsys, ["forward", "--checkpoint", str(model), "--input", str(clips), "--output",
                        str(tmp_path / "missing" / "out.npy")], "does not exist", "create it first")
    assert not (tmp_path / "out.npy").exists()


def test_model_info_with_no_classes(capsys):
    fails_with(capsys, ["model-info", "--num-classes", "0"], "num_classes=0 is not a positive integer")


def test_model_info_unknown_variant(capsys):
    fails_with(capsys, ["model-info", "--variant", "giant"], "unknown variant 'giant'")


# ---- show-fusion, predict --explain -------------------------------------------------------------

@pytest.mark.parametrize("extra, fragment", [
    (["--render", "foo"], "--render foo is not known"),
    (["--frames", "3"], "even number of frames"),
    (["--frames", "100"], "the stored clips hold 4 frames"),
    (["--clip", "999"], "--clip 999"),
    (["--out", "/nonexistent-folder/f.png"], "does not exist"),
])
def test_show_fusion_bad_arguments(data_dir, tmp_path, capsys, extra, fragment):
    fails_with(capsys, ["show-fusion", "--data-dir", str(data_dir), "--dataset", "synthetic",
                        "--out", str(tmp_path / "f.png"), *extra], fragment)


@pytest.mark.parametrize("explain, fragment", [("out", "needs a picture suffix"),
                                               ("missing/out.png", "does not exist")])
def test_predict_explain_path(tmp_path, capsys, explain, fragment):
    model = trained_model(tmp_path / "m")
    fails_with(capsys, ["predict", str(tmp_path / "x.mp4"), "--checkpoint", str(model),
                        "--explain", str(tmp_path / explain)], fragment)
