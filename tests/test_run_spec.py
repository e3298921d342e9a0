"""Every field of every shipped config, given a value of the wrong type, out of range or
unknown, is refused by the one validation of the run spec (mmae_jax/config/validate.py) with
one line naming the field, exit code 2 (``EXIT_USER_ERROR``), no traceback and nothing
written; and so is every flag of the commands. In process against ``validate_spec`` (fast),
with a handful of the same cases end to end through ``mmae-jax``."""

from __future__ import annotations

import argparse
import copy
import functools
import runpy
from pathlib import Path

import ml_collections
import pytest

from mmae_jax.config import validate
from mmae_jax.errors import EXIT_USER_ERROR, UserError, one_line_cause

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SHIPPED = sorted(p.stem for p in CONFIGS.glob("*.py") if not p.stem.startswith("_"))

# String fields with a list of allowed values: "nonsense" must be refused.
CHOICE_FIELDS = {"task", "mode", "data.dataset", "data.protocol", "data.strategy", "data.normalization",
                 "data.spectrogram_render", "data.frame_sampling", "data.rfas_order", "data.sfas_mode",
                 "data.cfas_resize", "model.variant", "model.head_norm", "model.head_init", "model.dtype",
                 "model.attention_impl", "model.remat_policy", "eval.views"}
# String fields that name a place or a build (checked against the file system, not a list).
FREE_STRINGS = {"init", "corpus", "data.data_dir", "data.builder_config", "data.stored_split", "data.split_dir"}
# Numbers without a range: none. Booleans take any truth value.
WRONG_TYPE = {bool: "maybe", int: "three", float: "fast", str: 7, tuple: 5}


@functools.lru_cache(maxsize=None)
def _shipped(name: str) -> ml_collections.ConfigDict:
    config = runpy.run_path(str(CONFIGS / f"{name}.py"))["get_config"](None)
    if config.mode == "linear_probe" and not config.init:
        config.init = "random"
    return config


def shipped(name: str) -> ml_collections.ConfigDict:
    """The shipped config ``name`` as it runs (a linear probe given ``init=random``), a new copy."""
    return copy.deepcopy(_shipped(name))


def leaves(node, prefix=""):
    for key, value in node.items():
        if isinstance(value, ml_collections.ConfigDict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def with_value(config: ml_collections.ConfigDict, field: str, value) -> ml_collections.ConfigDict:
    """A copy of ``config`` with ``field`` set to ``value`` of any type (as a config file could)."""
    values = copy.deepcopy(config.to_dict())
    *path, key = field.split(".")
    node = values
    for part in path:
        node = node[part]
    node[key] = value
    return ml_collections.ConfigDict(values)


def out_of_range(field: str, value):
    """A value of ``value``'s type that ``validate.RANGES[field]`` refuses."""
    test = validate.RANGES[field][0]
    candidates = [(-0.5, 0.0)] if isinstance(value, tuple) else [-5, 0] if isinstance(value, int) else [-1.0, 1.5, 0.0]
    return next(c for c in candidates if not test(c))


def cases():
    """(config name, field, kind, bad value) for every field of every shipped config."""
    for name in SHIPPED:
        if name == "__init__":
            continue
        for field, value in leaves(shipped(name)):
            kind = tuple if isinstance(value, (tuple, list)) else type(value)
            yield name, field, "type", WRONG_TYPE[kind]
            if kind in (int, float) or field in ("data.augment.face_crop_scale", "data.augment.face_crop_ratio"):
                if field.startswith("mesh.") and field != "mesh.min_shard_bytes":
                    yield name, field, "range", 0
                else:
                    yield name, field, "range", ("RANGE", value)
            if field in CHOICE_FIELDS:
                yield name, field, "unknown", ("nonsense",) if kind is tuple else "nonsense"


CASES = list(cases())


def test_every_field_is_classified():
    """A new field needs a rule: a range row for a number, a list of values or a place for a string."""
    missing = []
    for name in SHIPPED:
        if name == "__init__":
            continue
        for field, value in leaves(shipped(name)):
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not field.startswith("mesh."):
                if field not in validate.RANGES and field != "mesh.min_shard_bytes":
                    missing.append(f"{name}: {field} (a number without a range)")
            if isinstance(value, str) and field not in CHOICE_FIELDS | FREE_STRINGS:
                missing.append(f"{name}: {field} (a string neither a choice nor a place)")
    assert not missing, missing


def bad_field_failure(name: str, field: str, kind: str, bad, workdir: Path) -> str | None:
    """What is wrong with how ``validate_spec`` takes shipped config ``name`` with ``field`` set to
    the bad value ``bad`` (``kind``: type / range / unknown), run in the empty folder ``workdir``;
    None when it is refused with one line naming the field and nothing is written."""
    case = f"{name}:{field}:{kind}"
    config = shipped(name)
    if isinstance(bad, tuple) and bad[:1] == ("RANGE",):
        bad = out_of_range(field, bad[1])
    try:
        validate.validate_spec(config)                          # the shipped config itself is valid
    except UserError as error:
        return f"{case}: the shipped config is refused: {error}"
    try:
        validate.validate_spec(with_value(config, field, bad))
    except UserError as error:
        line = one_line_cause(error)
    else:
        return f"{case}: {bad!r} is accepted"
    written = sorted(p.name for p in workdir.iterdir())
    if line is None or "\n" in line or "Traceback" in line:
        return f"{case}: not one line: {line!r}"
    if field.rsplit(".", 1)[-1] not in line:                     # it names the field
        return f"{case}: the line does not name the field: {line!r}"
    if written:                                                 # nothing written
        return f"{case}: wrote {written}"
    return None


# One test per shipped config, each checking every case of that config (hundreds of cases: one
# test each would spend more time in pytest than in the checks); every failing case is listed.
@pytest.mark.parametrize("name", [name for name in SHIPPED if name != "__init__"])
def test_a_bad_field_is_one_line_before_anything_is_written(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cases = [case for case in CASES if case[0] == name]
    assert cases, f"no fields found in configs/{name}.py"
    failures = [failure for case in cases if (failure := bad_field_failure(*case, tmp_path))]
    assert not failures, f"{len(failures)} of {len(cases)} cases fail:\n" + "\n".join(failures)


@pytest.mark.parametrize("changes, fragment", [
    ({"data.num_frames": 15}, "needs an even data.num_frames"),           # strategy vs frames
    ({"data.protocol": "kfold", "data.fold": 6}, "folds 0..5, not fold=6"),  # folds vs protocol
    ({"data.image_size": 72}, "img_size 72 is not a multiple of patch_size 16"),  # frames vs model
    ({"mode": "linear_probe", "init": ""}, "no init gives its weights"),  # probe vs init
    ({"eval.views": ()}, "must be a non-empty tuple"),
    ({"checkpoint.keep": 0}, "checkpoint.keep=0 must be a positive integer"),
    ({"checkpoint.every_steps": 0}, "checkpoint.every_steps=0 must be a positive integer"),
    ({"mesh.data": -2}, "is not a mesh"),
])
def test_relations_between_fields(changes, fragment):
    config = shipped("demo")
    for field, value in changes.items():
        config = with_value(config, field, value)
    with pytest.raises(UserError, match=fragment.replace("(", r"\(").replace(".", r"\.")):
        validate.validate_spec(config)


def test_the_task_and_the_command():
    with pytest.raises(UserError, match="run this config with `mmae-jax pretrain`"):
        validate.validate_spec(shipped("pretrain_demo"), command="train")
    validate.validate_spec(shipped("pretrain_demo"), command="pretrain")


@pytest.mark.parametrize("device_count, fragment", [
    (3, "batch_size=16 does not split over the 3 devices"), (32, "batch_size=16 does not split over the 32 devices")])
def test_devices_are_checked_by_count(device_count, fragment):
    """``validate_devices`` takes the count, so ``mmae-jax plan`` can check a TPU topology's."""
    config = shipped("demo")
    validate.validate_devices(config, 16)
    with pytest.raises(UserError, match=fragment):
        validate.validate_devices(config, device_count)


def test_every_choice_table_is_the_one_its_module_implements():
    from mmae_jax.config import choices, recipes
    from mmae_jax.data.normalize import NORMALIZATIONS
    from mmae_jax.train.loop import TASK_CLASSES

    assert tuple(NORMALIZATIONS) == choices.NORMALIZATIONS
    assert tuple(recipes.RECIPES) == choices.RECIPES
    assert set(TASK_CLASSES) == set(choices.TASK_COMMANDS)


def command_flag_cases():
    """(command, argv with one bad flag) for every typed or restricted flag of every command."""
    from mmae_jax.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command, subparser in sub.choices.items():
        for action in subparser._actions:
            if not action.option_strings or action.nargs == 0:
                continue
            flag = action.option_strings[-1]
            if action.choices:
                yield command, flag, "nonsense"
            elif action.type in (int, float):
                yield command, flag, "many"


FLAG_CASES = list(command_flag_cases())


def bad_flag_failure(command: str, flag: str, bad: str, workdir: Path, capsys) -> str | None:
    """What is wrong with how ``mmae-jax command flag bad`` stops, run in the empty folder
    ``workdir``; None when it exits 2 with one ``error:`` line naming the flag and writes nothing."""
    from mmae_jax.cli import main

    case = f"{command} {flag} {bad}"
    try:
        main([command, flag, bad])
    except SystemExit as exited:
        code = exited.code
    else:
        code = None
    err = capsys.readouterr().err.strip().splitlines()
    written = sorted(p.name for p in workdir.iterdir())
    if code != EXIT_USER_ERROR:
        return f"{case}: exit code {code!r}, not {EXIT_USER_ERROR}; stderr {err}"
    if not (len(err) == 1 and err[0].startswith("error: ") and flag in err[0]):
        return f"{case}: not one error line naming the flag: {err}"
    if written:
        return f"{case}: wrote {written}"
    return None


# One test per command, each checking every typed or restricted flag of it; every failing flag is listed.
@pytest.mark.parametrize("command", sorted({command for command, _, _ in FLAG_CASES}))
def test_a_bad_flag_is_one_error_line(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cases = [case for case in FLAG_CASES if case[0] == command]
    failures = [failure for case in cases if (failure := bad_flag_failure(*case, tmp_path, capsys))]
    assert not failures, f"{len(failures)} of {len(cases)} flags fail:\n" + "\n".join(failures)


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--config", "demo", "--config.optim.lr=-1.0"], "optim.lr=-1.0 must be above 0"),
    (["train", "--config", "demo", "--config.data.normalization=bright"], "data.normalization='bright' is not known"),
    (["kfold", "--config", "demo", "--config.checkpoint.keep=0"], "checkpoint.keep=0 must be a positive integer"),
    (["sweep", "--config", "demo", "--config.model.dtype=float8"], "dtype"),
    (["pretrain", "--config", "pretrain_demo", "--config.model.mask_ratio=1.5"], "mask_ratio"),
    (["splits", "--config", "demo", "--config.data.protocol=any"], "data.protocol='any' is not known"),
])
def test_end_to_end_through_the_command(argv, fragment, tmp_path, monkeypatch, capsys):
    from mmae_jax.cli import main

    monkeypatch.chdir(tmp_path)
    out = "--out" if argv[0] == "splits" else "--workdir"
    assert main([*argv, out, str(tmp_path / "run")]) == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err
    assert not any(tmp_path.iterdir())
