"""What the command prints and writes: help, --print-config, named configs, a quiet console,
provenance, TensorBoard records, evaluate's own folder, model-info and predict --dump-inputs."""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stored_dataset import tiny_config, tiny_flags

ROOT = Path(__file__).resolve().parents[1]
CONFIG_COMMANDS = ("train", "pretrain", "kfold", "sweep")


def _main(args: list[str]) -> int:
    from mmae_jax.cli import main
    return main(args)


@pytest.mark.parametrize("command", CONFIG_COMMANDS)
def test_help_shows_the_config_forms_and_defaults(command, capsys):
    with pytest.raises(SystemExit):
        _main([command, "--help"])
    out = capsys.readouterr().out
    assert "--config FILE_OR_NAME[:ARGS]" in out and "--config.KEY=VALUE" in out and "--print-config" in out
    assert "ravdess" in out and "--verbose" in out


def test_evaluate_help_shows_model_choice_and_overrides(capsys):
    with pytest.raises(SystemExit):
        _main(["evaluate", "--help"])
    out = capsys.readouterr().out
    assert "best|final|STEP" in out and "--config.KEY=VALUE" in out and "(default: final)" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _main(["--version"])
    assert exit_info.value.code == 0
    assert re.fullmatch(r"mmae-jax \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


def test_print_config_resolves_a_named_config_with_args_and_overrides(capsys):
    assert _main(["train", "--workdir", "unused", "--config", "ravdess:strategy=ffls,fold=2",
                  "--config.batch_size=3", "--print-config"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["data"]["dataset"] == "ravdess" and config["data"]["strategy"] == "ffls"
    assert config["data"]["fold"] == 2 and config["batch_size"] == 3
    assert not Path("unused").exists()


@pytest.mark.parametrize("command", CONFIG_COMMANDS)
def test_print_config_needs_no_workdir(command, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _main([command, "--config", "demo:strategy=sfas", "--print-config"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["data"]["dataset"] == "synthetic" and config["data"]["strategy"] == "sfas"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", CONFIG_COMMANDS)
def test_running_without_workdir_is_one_error_line(command, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _main([command, "--config", "demo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: mmae-jax {command} needs --workdir") and err.count("\n") == 1
    assert "--print-config" in err and list(tmp_path.iterdir()) == []


def test_print_config_accepts_a_path(capsys):
    assert _main(["train", "--workdir", "unused", f"--config={ROOT / 'configs' / 'demo.py'}:strategy=sfas",
                  "--print-config"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["data"]["dataset"] == "synthetic" and config["data"]["strategy"] == "sfas"


def test_unknown_config_name_lists_the_shipped_ones(capsys):
    assert _main(["train", "--workdir", "unused", "--config", "ravdes", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: config 'ravdes' is neither a file nor a shipped config")
    assert "crema_d, demo, iemocap" in err


def test_model_info_reads_a_model_directory_and_names_its_flop_unit(tmp_path, capsys):
    from mmae_jax.model import VideoMAEConfig
    from mmae_jax.model.io import build_model, save_model

    cfg = VideoMAEConfig.from_variant("tiny", num_classes=5, num_frames=4, img_size=32)
    save_model(tmp_path / "final_model", build_model(cfg, "classifier"), cfg, kind="classifier")
    assert _main(["model-info", "--checkpoint", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"classes\s+5\n", out) and re.search(r"input \(T, H, W, C\)\s+4 x 32 x 32 x 3", out)
    assert re.search(r"forward GFLOPs per clip\s+[\d.]+ \(2 x MACs\)", out)


# --- predict --dump-inputs ---------------------------------------------------------------------
def test_dump_inputs_equal_the_pipelines_evaluation_input(tmp_path, capsys):
    """The dumped array is the training pipeline's evaluation transform of the same file's clip."""
    from media_factory import drawn_face_frames, tone, write_video

    from mmae_jax.data.normalize import to_model_input
    from mmae_jax.data.transform import prepare_clip
    from mmae_jax.infer.predictor import Predictor
    from mmae_jax.model.io import build_model, save_model
    from mmae_jax.train.steps import model_config

    config = tiny_config("unused", **{"data.strategy": "ofos"})
    cfg = model_config(config, num_classes=4)
    save_model(tmp_path / "run" / "final_model", build_model(cfg, "classifier"), cfg, kind="classifier",
               metadata=dict(class_names=[f"class{i}" for i in range(4)], data=config.data.to_dict(), step=0))
    video = tmp_path / "media" / "happy.mp4"
    write_video(video, drawn_face_frames(40, seed=1), audio=tone(300, 1.4))
    out = tmp_path / "inputs"
    assert _main(["predict", "--checkpoint", str(tmp_path / "run"), "--builder-config", "ravdess/whole_frame",
                  "--no-attribution", "--dump-inputs", str(out), str(video)]) == 0
    dumped = np.load(out / "happy.npy")

    predictor = Predictor(tmp_path / "run", builder_config="ravdess/whole_frame")
    clip = predictor.reader(video, None)
    expected = to_model_input(prepare_clip(clip.faces, clip.spectrogram, predictor.data_cfg),
                              config.data.normalization)
    assert dumped.dtype == np.float32 and dumped.shape == (4, 32, 32, 3)
    np.testing.assert_allclose(dumped, expected, atol=1e-6, rtol=0)
    assert dumped.std() > 0.1                                           # a real picture, not a constant
    import matplotlib.pyplot as plt
    assert plt.imread(out / "happy.png").shape[:2] == (32, 4 * 32)


# --- a real run in a subprocess: quiet console, provenance, TensorBoard, evaluate ---------------
NOISE = re.compile(r"tensorflow|absl|oneDNN|I0000|W0000|E0000|cuda|WARNING|INFO|Deprecat", re.IGNORECASE)


def _run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([sys.executable, "-m", "mmae_jax.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def _noise(completed: subprocess.CompletedProcess) -> list[str]:
    """Lines of stdout/stderr that are neither our output (mmae_jax's own warnings included) nor a
    progress bar."""
    text = re.sub(r"(WARNING|ERROR) mmae_jax\.[\w.]+: [^\n]*", "", completed.stdout + completed.stderr)
    return [line for line in text.replace("\r", "\n").splitlines() if NOISE.search(line)]


@pytest.mark.slow
def test_train_is_quiet_records_provenance_and_evaluate_writes_its_own_folder(data_dir, tmp_path):
    from mmae_jax.train.provenance import data_build

    workdir = tmp_path / "run"
    flags = tiny_flags(data_dir, config="demo", num_epochs=2, log_every_steps=20,
                       **{"checkpoint.every_steps": 1, "checkpoint.keep": 10})
    train = _run_cli(["train", "--workdir", str(workdir), *flags], tmp_path)
    assert train.returncode == 0, train.stderr[-3000:]
    assert _noise(train) == [], _noise(train)
    assert "test, last epoch" in train.stdout

    results = json.loads((workdir / "results.json").read_text())
    provenance = results["provenance"]
    assert provenance["data_build"] == data_build(glob.glob(str(data_dir / "synthetic" / "*"))[0])
    assert provenance["host_count"] == 1 and provenance["devices"]["count"] == 1
    assert provenance["packages"]["jax"] and provenance["wall_time_s"] > 0
    assert provenance["git"] is None or len(provenance["git"]["commit"]) == 40
    for name in ("confusion_test", "training_curves"):
        assert (workdir / f"{name}.png").stat().st_size > 5_000 and (workdir / f"{name}.pdf").stat().st_size > 5_000

    import tensorflow as tf
    tags = set()
    for events in (workdir / "tensorboard").iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            tags.update((value.tag, value.WhichOneof("value") or value.metadata.plugin_data.plugin_name)
                        for value in event.summary.value)
    assert {("test/war", "simple_value"), ("test/uar", "simple_value"), ("test/confusion", "image"),
            ("_hparams_/experiment", "hparams")} <= tags

    saved = {name: (workdir / name).read_bytes() for name in ("config.json", "results.json")}
    evaluate = _run_cli(["evaluate", "--workdir", str(workdir), "--model", "final"], tmp_path)
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    assert _noise(evaluate) == [], _noise(evaluate)
    final = json.loads((workdir / "evaluations" / "final_test" / "results.json").read_text())
    assert final["war"] == pytest.approx(results["test"]["war"])
    assert final["confusion_matrix"] == results["test"]["confusion_matrix"]

    # a train checkpoint of an earlier step, evaluated on another split with an override
    evaluate = _run_cli(["evaluate", "--workdir", str(workdir), "--model", "4", "--split", "validation",
                         "--config.eval.batch_size=4", "--name", "step4"], tmp_path)
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    step4 = json.loads((workdir / "evaluations" / "step4" / "results.json").read_text())
    history = {entry["step"]: entry for entry in results["validation_history"]}
    assert step4["step"] == 4 and step4["war"] == pytest.approx(history[4]["war"])
    assert json.loads((workdir / "evaluations" / "step4" / "config.json").read_text())["eval"]["batch_size"] == 4
    assert {name: (workdir / name).read_bytes() for name in saved} == saved
