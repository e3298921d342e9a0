"""Evaluating a model on a split: every clip exactly once, on every host.

``evaluate_split`` scores the parameters a run holds (the classification task's validation
and test). ``evaluate_workdir`` evaluates a training workdir's model without a Trainer: only
the parameters are read (orbax restores ``trainable`` and ``frozen`` alone from a train
checkpoint, or the ``params/`` of ``best_model`` / ``final_model``); no optimiser state, no
initial-weights reload. The workdir's saved ``config.json`` is the experiment (changed only in
memory by ``--config.KEY=VALUE`` overrides, never rewritten); the results go to
``workdir/evaluations/<name>/``: ``results.json``, ``config.json`` (the config evaluated) and
the confusion matrix as PNG and PDF.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Callable, Sequence

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from mmae_jax.config.names import canonical
from mmae_jax.data import pipeline
from mmae_jax.data.integrity import reading_errors
from mmae_jax.data.source import open_dataset, stored_builder_dir
from mmae_jax.errors import ConfigError, InputError, UserError
from mmae_jax.model.io import PARAMS_DIR, read_params
from mmae_jax.model.location import CHECKPOINTS_DIR, MODEL_DIRS, STATE_ITEM, saved_steps
from mmae_jax.model.paths import flat_params, map_named
from mmae_jax.train.assembly import assemble
from mmae_jax.train.mesh import to_host
from mmae_jax.train.metrics import classification_report, cross_entropy
from mmae_jax.train.plots import plot_confusion
from mmae_jax.train.provenance import provenance
from mmae_jax.train.validate import validate_experiment

IN_FLIGHT = 2   # evaluation steps dispatched ahead of the last finished one


def predict_split(eval_step: Callable, state, data_cfg, split: str, *, batch_size: int,
                  sharding) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities [N, K], labels [N])`` for the N clips of ``split``, padding dropped.

    No result is copied to the host before the split is done: the host prepares the next
    batches while the devices run, at most ``IN_FLIGHT`` steps ahead of them (that bounds the
    device memory held by queued batches); the outputs stay on the devices until the end.
    """
    outputs = []
    for batch in pipeline.make_eval_iterator(data_cfg, split, global_batch_size=batch_size, sharding=sharding):
        outputs.append((eval_step(state, batch["video"]), batch["label"], batch["mask"]))
        if len(outputs) > IN_FLIGHT:
            outputs[-1 - IN_FLIGHT][0].block_until_ready()
    if not outputs:
        return np.zeros((0, 0), np.float32), np.zeros((0,), np.int64)
    probs, labels, masks = ([to_host(array) for array in arrays] for arrays in zip(*outputs))
    keep = np.concatenate(masks).astype(bool)
    return np.concatenate(probs)[keep], np.concatenate(labels)[keep]


def evaluate_split(eval_step: Callable, state, data_cfg, split: str, class_names: Sequence[str], *,
                   batch_size: int, sharding) -> dict:
    """The classification report (WAR, UAR, per-class recall, confusion) of ``split`` and its
    ``loss`` (``cross_entropy``); InputError for an empty split (never a NaN score)."""
    probs, labels = predict_split(eval_step, state, data_cfg, split, batch_size=batch_size, sharding=sharding)
    if not len(labels):
        raise empty_split_error(data_cfg, split)
    return dict(classification_report(labels, probs.argmax(axis=-1), class_names), loss=cross_entropy(probs, labels))


def empty_split_error(data_cfg, split: str) -> InputError:
    """The one line for a split of ``data_cfg``'s protocol and fold that holds no clips."""
    return InputError(f"the {split} split of {data_cfg.dataset} (protocol {data_cfg.protocol}, fold {data_cfg.fold}) "
                      f"holds no clips", "choose another split, protocol or fold, or check the build")


def saved_config(workdir: Path, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
    """The workdir's ``config.json`` with ``--config.KEY=VALUE`` ``overrides`` applied (typos fail)."""
    from absl import flags
    from ml_collections import config_flags

    path = workdir / "config.json"
    if not path.is_file():
        raise InputError(f"{path} not found: {workdir} is not a training workdir",
                         "give the --workdir of a `mmae-jax train` run")
    config = ml_collections.ConfigDict(json.loads(path.read_text()))
    bad = [arg for arg in overrides if not arg.startswith("--config.")]
    if bad:
        raise ConfigError(f"evaluate takes only --config.KEY=VALUE overrides, got {' '.join(bad)}",
                          "the experiment is the workdir's config.json")
    flag_values = flags.FlagValues()
    argv = ["mmae-jax", *overrides]
    try:
        config_flags.DEFINE_config_dict("config", config, flag_values=flag_values, lock_config=True,
                                        sys_argv=argv)
        flag_values(argv)
    except (flags.Error, AttributeError, KeyError, ValueError, TypeError) as error:
        raise ConfigError(f"bad override in {' '.join(overrides)}: {str(error).strip(chr(34))}",
                          "use --config.KEY=VALUE with a KEY of the workdir's config.json") from error
    return canonical(flag_values.config)


def restore_parameters(workdir: Path, which: str, abstract: dict, shardings: dict) -> tuple[dict, int]:
    """``({"trainable": ..., "frozen": ...}, step)`` of model ``which`` (best, final or a step number).

    ``abstract``: ShapeDtypeStruct trees of the two parameter groups; ``shardings``: their placement.
    """
    target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
    if which in MODEL_DIRS:
        model_dir = workdir / MODEL_DIRS[which]
        if not (model_dir / PARAMS_DIR).is_dir():
            raise InputError(f"{model_dir} holds no model", "train to the end, or give --model STEP")
        step = json.loads((model_dir / "config.json").read_text()).get("metadata", {}).get("step", -1)
        values = read_params(model_dir, flat_params(target["trainable"]) | flat_params(target["frozen"]))
        return {group: map_named(lambda name, _: values[name], tree) for group, tree in target.items()}, int(step)
    if not which.isdigit():
        raise ConfigError(f"--model {which!r}", "choose best, final or a saved step number")
    step_dir = workdir / CHECKPOINTS_DIR / which / STATE_ITEM
    if not step_dir.is_dir():
        raise InputError(f"no checkpoint of step {which} in {workdir / CHECKPOINTS_DIR}",
                         f"saved steps: {saved_steps(workdir)}")
    restore_args = ocp.checkpoint_utils.construct_restore_args(target)
    restored = ocp.PyTreeCheckpointer().restore(step_dir, args=ocp.args.PyTreeRestore(
        item=target, restore_args=restore_args, partial_restore=True))
    return {"trainable": restored["trainable"], "frozen": restored["frozen"]}, int(which)


def _first_line(error: BaseException) -> str:
    """The first line of ``error``'s innermost cause (orbax wraps tensorstore's long message)."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def default_name(which: str, split: str, overrides: Sequence[str]) -> str:
    """``<model>_<split>``, plus a short hash of the overrides when there are any."""
    name = f"{which}_{split}"
    if overrides:
        name += "_" + hashlib.sha256("\0".join(overrides).encode()).hexdigest()[:8]
    return name


def evaluate_workdir(workdir: str | Path, split: str = "test", *, model: str = "final",
                     overrides: Sequence[str] = (), name: str = "") -> dict:
    """Evaluate ``model`` of ``workdir`` on ``split``; write and return the report.

    The report holds WAR, UAR, per-class recall, confusion matrix, the step, the overrides,
    ``provenance`` and ``output_dir`` (``workdir/evaluations/<name>``).
    """
    started = time.perf_counter()
    workdir = Path(workdir).absolute()
    config = saved_config(workdir, overrides)
    if config.get("task", "classification") != "classification":
        raise InputError(f"{workdir} holds a {config.task} run, not a classifier",
                         f"fine-tune from it (init={workdir}) and evaluate that run")
    validate_experiment(config, command="evaluate")
    with reading_errors(config.data):
        dataset = open_dataset(config.data)
    class_names = dataset.class_names
    asm = assemble(config, num_classes=len(class_names), steps_per_epoch=1)
    groups = dict(trainable=asm.abstract.trainable, frozen=asm.abstract.frozen)
    try:
        state, step = restore_parameters(workdir, model, groups, asm.param_shardings)
    except UserError:
        raise
    except Exception as error:      # orbax / tensorstore: a shape that does not fit, or damaged files
        if overrides:
            raise ConfigError(f"model {model} of {workdir} can not be restored under {' '.join(overrides)} "
                              f"({_first_line(error)})",
                              "override only fields that keep the model's shape (data_dir, fold, views, "
                              "eval.batch_size)") from error
        raise InputError(f"model {model} of {workdir} can not be read ({_first_line(error)})",
                         "its files are damaged or incomplete; choose another --model (best, final or a saved "
                         "step)") from error
    with reading_errors(config.data):
        report = evaluate_split(asm.eval_step, state, config.data, split, class_names,
                                batch_size=config.eval.batch_size, sharding=asm.data_sharding)
    output = workdir / "evaluations" / (name or default_name(model, split, overrides))
    report |= dict(model=model, step=step, split=split, overrides=list(overrides), output_dir=str(output),
                   dataset=config.data.dataset, strategy=config.data.strategy, protocol=config.data.protocol,
                   fold=config.data.fold)
    builder_dir = stored_builder_dir(config.data.data_dir, config.data.dataset, config.data.builder_config)
    report["provenance"] = provenance(builder_dir, time.perf_counter() - started)
    if jax.process_index() == 0:
        output.mkdir(parents=True, exist_ok=True)
        (output / "results.json").write_text(json.dumps(report, indent=2) + "\n")
        (output / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")
        plot_confusion(report["confusion_matrix"], class_names, output / "confusion.png",
                       f"{config.data.dataset} / {config.data.strategy} / fold {config.data.fold}: {split}, "
                       f"{model} model (step {step})", war=report["war"], uar=report["uar"])
    return report
