"""What ``--checkpoint`` names: a model folder, or a training run folder and one of its models.

The one rule of every command that reads a trained model (forward, predict, export, model-info):

- a **model folder** holds ``config.json`` (the model config, ``"format"`` and ``"kind"``) and
  ``params/`` (mmae_jax/model/io.py): the output of ``mmae-jax convert``, or a run's
  ``best_model/`` or ``final_model/``. ``--model`` is refused with it (it holds one model).
- a **run folder** is a ``train`` / ``pretrain`` workdir: ``config.json`` (the experiment),
  ``best_model/`` (the model of the best validation so far), ``final_model/`` (the model
  after the last step) and ``checkpoints/STEP/`` (orbax train checkpoints, the newest few).
  ``--model`` picks one: ``best``, ``final`` or a saved ``STEP``; by default ``best`` when the
  run has one (a classification run with a validation split), else ``final``. A ``STEP``'s
  weights are read from the train checkpoint (its ``trainable`` and ``frozen`` parameters,
  not the optimiser state) with the model config of the run's ``best_model/`` or
  ``final_model/`` (the run writes the first at its first validation and the second at its end).

Anything else is one ``ConfigError`` line naming the path, what was found there and what is
wrong (``resolve_checkpoint``). ``init=`` of a training config reads a model folder or a
finished run's ``final_model/`` (``resolve_model_dir``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import orbax.checkpoint as ocp

from mmae_jax.errors import ConfigError, UserError
from mmae_jax.model import io as model_io
from mmae_jax.model.config import VideoMAEConfig

BEST_MODEL, FINAL_MODEL = "best_model", "final_model"
MODEL_DIRS = {"best": BEST_MODEL, "final": FINAL_MODEL}   # --model NAME -> the run's model folder
CHECKPOINTS_DIR = "checkpoints"      # the train checkpoints of a run folder: checkpoints/STEP/<item>
STATE_ITEM = "state"                 # the item of a train checkpoint that holds the train state
PARAM_GROUPS = ("trainable", "frozen")   # the train state's keys that hold the model's parameters
MODEL_CHOICES = "best|final|STEP"


@dataclasses.dataclass(frozen=True)
class ModelChoice:
    """The model a ``--checkpoint`` (and ``--model``) names.

    ``directory``: the model folder whose ``config.json`` describes the model; ``params``: where
    its weights are (that folder's ``params/``, or a train checkpoint); ``label``: how the
    commands name it, e.g. ``runs/r1/best_model (best validation, step 40)``; ``from_run``: the
    value was a run folder; ``step``: the train step of a train checkpoint (None: the step in
    the folder's metadata).
    """

    directory: Path
    params: model_io.SavedParams
    label: str
    from_run: bool = False
    step: int | None = None

    def read_config(self) -> tuple[VideoMAEConfig, str, dict]:
        """``(cfg, kind, metadata)`` as ``model_io.read_config``; a train checkpoint's ``step``."""
        cfg, kind, metadata = model_io.read_config(self.directory)
        return cfg, kind, metadata if self.step is None else dict(metadata, step=self.step)

    def load(self, overrides: dict[str, Any] | None = None):
        """``(model, cfg, kind)`` as ``model_io.load_model``, with these weights."""
        return model_io.load_model(self.directory, overrides=overrides, params=self.params)


def resolve_checkpoint(path: str | Path, model: str | None = None, *, option: str = "--checkpoint") -> ModelChoice:
    """The model that ``path`` (a model folder or a run folder) and ``model`` (``best``,
    ``final``, a step number, or None for the default) name; ``option`` names ``path``'s
    setting in the errors. The chosen model folder's ``config.json`` is read here, so a
    damaged one is reported now (its weights are read by ``ModelChoice.load``)."""
    path = Path(path)
    given = f"{option} {path}"
    kind = _folder_kind(path, option)
    if kind == "model":
        if model is not None:
            in_run = path.name in MODEL_DIRS.values()
            raise ConfigError(f"--model {model} picks a model of a training run folder, but {given} is a model "
                              f"folder (config.json + params/), which holds one model",
                              f"drop --model{f', or give the run folder: {option} {path.parent}' if in_run else ''}")
        _check_model_folder(path, f"{given} is a model folder, but")
        return ModelChoice(path, model_io.SavedParams.of_directory(path), str(path))
    return _run_model(path, given, model)


def saved_steps(run: Path) -> list[int]:
    """The steps of the finished train checkpoints of run folder ``run``, oldest first."""
    folder = Path(run) / CHECKPOINTS_DIR
    return sorted(ocp.path.step.checkpoint_steps(folder)) if folder.is_dir() else []


def resolve_model_dir(path: str | Path, option: str = "init") -> Path:
    """``path`` when it is a model directory (it has ``params/``), else its ``final_model/``.

    ``option`` names the setting that gave ``path`` in the one-line ConfigError raised for a
    file, a folder that is neither, or a missing path (e.g. ``init``).
    """
    path = Path(path)
    if (path / model_io.PARAMS_DIR).is_dir():
        return path
    if (path / FINAL_MODEL / model_io.PARAMS_DIR).is_dir():
        return path / FINAL_MODEL
    if path.is_file():
        raise ConfigError(f"{option}={path} is a file, not a model directory",
                          f"convert it first: mmae-jax convert --source {path} --output DIR, then {option}=DIR")
    raise ConfigError(f"{option}={path} is neither a model directory (config.json + params/) nor a "
                      f"finished run's workdir with {FINAL_MODEL}/",
                      "pass the folder written by `mmae-jax convert` or by training" if path.exists()
                      else "the path does not exist; check its spelling")


# --- what the folder is ---------------------------------------------------------------------------
def _folder_kind(path: Path, option: str) -> str:
    """``"model"`` or ``"run"``; ConfigError for a missing path, a file, or a folder that is neither."""
    given = f"{option} {path}"
    if not path.exists():
        raise ConfigError(f"{given} does not exist", "check its spelling")
    if path.is_file():
        raise ConfigError(f"{given} is a file, not a model folder or a training run folder",
                          f"a PyTorch or Hugging Face checkpoint is converted first: mmae-jax convert --source "
                          f"{path} --output DIR, then {option} DIR")
    document = _json(path / model_io.CONFIG_FILE)
    if (path / model_io.PARAMS_DIR).is_dir() or (isinstance(document, dict) and {"format", "kind"} <= set(document)):
        return "model"
    if any((path / name).is_dir() for name in (*MODEL_DIRS.values(), CHECKPOINTS_DIR)) or (
            isinstance(document, dict) and "data" in document):
        return "run"
    found = ("config.json that is not valid JSON" if document is _UNREADABLE else
             "a config.json that is neither a model config nor an experiment config" if document is not None else
             "no config.json")
    raise ConfigError(f"{given} is neither a model folder (config.json + params/) nor a training run folder "
                      f"(best_model/, final_model/ or checkpoints/): it holds {found}",
                      "give the folder written by `mmae-jax convert`, `mmae-jax train` or `mmae-jax pretrain`")


_UNREADABLE = object()


def _json(path: Path):
    """The JSON document at ``path``; None when there is no file, ``_UNREADABLE`` when it is not JSON."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return _UNREADABLE


def _check_model_folder(folder: Path, found: str) -> dict:
    """The metadata of model folder ``folder``; ConfigError ``"<found> <what is wrong>"`` when its
    ``params/`` or ``config.json`` is missing or the config can not be read."""
    for part, present in ((model_io.PARAMS_DIR, (folder / model_io.PARAMS_DIR).is_dir()),
                          (model_io.CONFIG_FILE, (folder / model_io.CONFIG_FILE).is_file())):
        if not present:
            raise ConfigError(f"{found} {folder / part} is missing (the folder is incomplete)",
                              "convert or export the model again, or give another folder")
    try:
        return model_io.read_config(folder)[2]
    except UserError as error:
        raise ConfigError(f"{found} {error.what}", error.fix) from error


# --- a model of a run folder ---------------------------------------------------------------------
def _run_model(run: Path, given: str, model: str | None) -> ModelChoice:
    """The model ``model`` of run folder ``run`` (None: best when the run has one, else final)."""
    present = [name for name, folder in MODEL_DIRS.items() if (run / folder).is_dir()]
    steps = saved_steps(run)
    saved = _saved_list(present, steps)
    found = f"{given} is a training run folder"
    if model is None:
        if not present:
            raise ConfigError(f"{found} without a saved model yet ({saved})",
                              "a run writes best_model/ at its first validation and final_model/ at its end; "
                              "wait for one, or run `mmae-jax evaluate` on a train checkpoint")
        model = present[0]
    if model in MODEL_DIRS:
        folder = run / MODEL_DIRS[model]
        if model not in present:
            raise ConfigError(f"{found} without {MODEL_DIRS[model]}/ ({saved})",
                              "choose a saved model with --model" if present or steps else
                              "train the run to its end first")
        metadata = _check_model_folder(folder, f"{found}, but its")
        what = "best validation" if model == "best" else "after the last step"
        step = f", step {metadata['step']}" if "step" in metadata else ""
        return ModelChoice(folder, model_io.SavedParams.of_directory(folder), f"{folder} ({what}{step})",
                           from_run=True)
    if not model.isdigit():
        raise ConfigError(f"--model {model!r} is not a model of a run",
                          f"choose {MODEL_CHOICES}; {given} holds {saved}")
    if int(model) not in steps:
        raise ConfigError(f"{found} without a train checkpoint of step {model} ({saved})",
                          "choose a saved step, best or final; a run keeps its newest checkpoint.keep steps")
    if not present:
        raise ConfigError(f"{found} whose train checkpoint of step {model} can not be read as a model yet: the "
                          f"model config comes from the run's best_model/ or final_model/, and it has neither",
                          "a run writes best_model/ at its first validation; meanwhile `mmae-jax evaluate "
                          f"--workdir {run} --model {model}` scores that step")
    template = run / MODEL_DIRS[present[0]]
    _check_model_folder(template, f"{found}, but its")
    state = run / CHECKPOINTS_DIR / model / STATE_ITEM
    params = model_io.SavedParams(state.absolute(), PARAM_GROUPS, damaged_fix=(
        f"the train checkpoint of step {model} is damaged or incomplete; choose another --model ({saved})"))
    return ModelChoice(template, params,
                       f"{run} train checkpoint of step {int(model)}", from_run=True, step=int(model))


def _saved_list(present: list[str], steps: list[int]) -> str:
    """``"saved: best, final, steps 8, 16"``: what a run folder holds."""
    parts = [*present] + ([f"steps {', '.join(map(str, steps))}"] if steps else [])
    return f"saved: {', '.join(parts)}" if parts else "nothing saved"
