"""The task named by ``config.task``: the registry, the commands that refuse another task's
config, the workdir guard, and the task states that checkpoints carry."""

import importlib
import json

import pytest

from configs import demo, pretrain_demo


def one_error_line(capsys, argv) -> str:
    from mmae_jax.cli import main

    rc = main(argv)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def config_file(name: str):
    """The module of ``configs/<name>.py``."""
    return importlib.import_module(f"configs.{name}")


def test_configs_name_their_task():
    assert demo.get_config().task == "classification"
    assert pretrain_demo.get_config().task == "pretraining"
    assert config_file("ravdess").get_config().task == "classification"
    assert config_file("pretrain_ravdess").get_config().task == "pretraining"


@pytest.mark.parametrize("command, config, other", [
    ("train", "pretrain_demo", "pretrain"),
    ("kfold", "pretrain_demo", "pretrain"),
    ("sweep", "pretrain_demo", "pretrain"),
    ("pretrain", "demo", "train"),
])
def test_a_command_refuses_a_config_of_another_task(capsys, tmp_path, command, config, other):
    line = one_error_line(capsys, [command, "--config", config, "--workdir", str(tmp_path / "run")])
    assert f"run this config with `mmae-jax {other}`" in line and "task is" in line
    assert not (tmp_path / "run").exists()


def test_an_unknown_task_is_named(capsys, tmp_path):
    line = one_error_line(capsys, ["train", "--config", "demo", "--workdir", str(tmp_path / "run"),
                                   "--config.task=regression"])
    assert "task='regression' is not known" in line and "classification, pretraining" in line


def test_pretrain_function_refuses_a_classification_config(tmp_path):
    from mmae_jax.errors import ConfigError
    from mmae_jax.train.loop import pretrain

    with pytest.raises(ConfigError, match="run this config with `mmae-jax train`"):
        pretrain(demo.get_config(), tmp_path)
    assert not any(tmp_path.iterdir())


def test_the_registry_is_the_one_list_of_model_kinds():
    from mmae_jax.model import io as model_io
    from mmae_jax.model.config import VideoMAEConfig
    from mmae_jax.model.kinds import MODEL_KINDS
    from mmae_jax.train.loop import TASK_CLASSES
    from mmae_jax.train.tasks import TASKS

    assert {spec.kind for spec in TASKS.values()} == set(MODEL_KINDS)      # every kind is trained by a task
    assert {spec.kind: spec.model_class.__name__ for spec in TASKS.values()} == {
        "classifier": "VideoMAEClassifier", "pretrainer": "VideoMAEPretrainer"}
    for kind, model_class in MODEL_KINDS.items():
        assert model_io.abstract_model(VideoMAEConfig.from_variant("small", num_classes=3), kind).__class__ is model_class
    with pytest.raises(ValueError, match="unknown model kind 'probe'; expected one of"):
        model_io.build_model(VideoMAEConfig.from_variant("small", num_classes=3), "probe")
    assert set(TASK_CLASSES) == set(TASKS)
    for name, spec in TASKS.items():
        task = TASK_CLASSES[name]()
        assert spec.command in ("train", "pretrain")
        assert task.state_class.from_json(task.state_class().to_json()) == task.state_class(), name


def test_a_workdir_of_another_task_is_refused(tmp_path, data_dir):
    from stored_dataset import tiny_config

    from mmae_jax.errors import WorkdirError
    from mmae_jax.train.workdir import check_saved_config

    config = tiny_config(data_dir)
    check_saved_config(tmp_path, config)
    (tmp_path / "results.json").write_text("{}")           # the workdir now holds a run
    other = tiny_config(data_dir)
    other.task = "pretraining"
    with pytest.raises(WorkdirError, match=r"task: \"classification\" -> \"pretraining\""):
        check_saved_config(tmp_path, other)
    assert json.loads((tmp_path / "config.json").read_text())["task"] == "classification"


def test_task_states_read_their_checkpointed_json():
    from mmae_jax.train.classification import ClassificationState
    from mmae_jax.train.pretraining import PretrainingState

    best = {"step": 4, "epoch": 1, "validation": {"uar": 50.0}}
    state = ClassificationState(history=[{"step": 4, "war": 40.0, "uar": 50.0}], best=best)
    assert ClassificationState.from_json(json.loads(json.dumps(state.to_json()))) == state
    # A checkpoint written before the states were typed held {"history": ..., "best": None} for both tasks.
    old = {"history": [{"step": 2, "split": "train", "loss": 0.5}], "best": None}
    assert PretrainingState.from_json(old) == PretrainingState(history=old["history"])
    assert ClassificationState.from_json(None) == ClassificationState()
