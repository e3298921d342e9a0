"""The one validation of a run spec, before any directory is touched or any data is read.

``validate_spec(config, command=...)`` checks every field of an experiment config: its type
(that of the field's default in ``defaults.base_config``), its range, its allowed values
(``choices``, the model's tables and the dataset protocols), and the relations between
fields (strategy and frame count, protocol and fold, frames and image size against the
model's tubelet and patch, a linear probe and its ``init``, the task and the command). It
raises ConfigError naming the field and the fix.

The checks that need facts from outside the config take them as arguments, so each runs as
soon as the fact is known and still before any work: ``validate_devices(config, n)`` the
device count (``mmae-jax plan`` passes a TPU topology's), ``check_build(data_cfg, features)``
the stored build's features (its frame timing against ``data.frame_sampling``).
The data, model and train modules call the same checks (``check_strategy``, ``check_layout``,
``check_views``) when they are used directly, without a run spec.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import ml_collections

from mmae_jax.data_prep import protocols
from mmae_jax.config import choices
from mmae_jax.config.defaults import base_config, default_data_config
from mmae_jax.errors import ConfigError
from mmae_jax.model.config import VARIANTS, VideoMAEConfig

# Fields some configs add to base_config's, with a default that gives their type.
EXTRA_FIELDS = {"corpus": ""}      # pre-training: extra sources (mmae_jax/data/corpus.py)


def _choice(field: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{field}={value!r} is not known", f"choose one of {', '.join(map(str, allowed))}")


def _range(field: str, value, test: Callable[[Any], bool], must: str, fix: str) -> None:
    if not test(value):
        raise ConfigError(f"{field}={value!r} must be {must}", f"set --config.{field} to {fix}")


# Field -> (test, what it must be, what to set). Every number of base_config() but the mesh's has a row.
_POSITIVE = (lambda v: v > 0, "above 0", "a positive number")
_NON_NEGATIVE = (lambda v: v >= 0, "0 or more", "0 or more")
_FRACTION = (lambda v: 0 <= v < 1, "a fraction in [0, 1)", "a value in [0, 1)")
_COUNT = (lambda v: v >= 1, "a positive integer", "1 or more")
_MINUS_ONE_OR_COUNT = (lambda v: v == -1 or v >= 1, "-1 or a positive integer", "-1 or 1 or more")
RANGES: dict[str, tuple[Callable[[Any], bool], str, str]] = {
    "seed": _NON_NEGATIVE, "batch_size": _COUNT, "num_epochs": _COUNT, "log_every_steps": _COUNT,
    "max_steps": _MINUS_ONE_OR_COUNT,
    "optim.lr": _POSITIVE, "optim.min_lr": _NON_NEGATIVE, "optim.warmup_epochs": _NON_NEGATIVE,
    "optim.weight_decay": _NON_NEGATIVE, "optim.b1": _FRACTION, "optim.b2": _FRACTION, "optim.eps": _POSITIVE,
    "optim.layer_decay": (lambda v: 0 < v <= 1, "in (0, 1]", "a value in (0, 1]"),
    "optim.label_smoothing": _FRACTION, "optim.mixup_alpha": _NON_NEGATIVE, "optim.cutmix_alpha": _NON_NEGATIVE,
    "optim.grad_clip_norm": _NON_NEGATIVE, "optim.grad_accum_steps": _COUNT,
    "eval.every_epochs": _COUNT, "eval.batch_size": _COUNT,
    "mesh.min_shard_bytes": _NON_NEGATIVE,          # mesh.slices, data, fsdp: check_mesh
    "checkpoint.every_steps": _COUNT, "checkpoint.keep": _COUNT,
    "data.fold": _NON_NEGATIVE, "data.split_seed": _NON_NEGATIVE, "data.num_frames": _COUNT,
    "data.image_size": _COUNT, "data.seed": _NON_NEGATIVE, "data.shuffle_buffer": _COUNT,
    "data.prefetch": _NON_NEGATIVE, "data.num_parallel_calls": _MINUS_ONE_OR_COUNT,
    "data.augment.spec_time_mask": _FRACTION, "data.augment.spec_freq_mask": _FRACTION,
    "data.augment.face_crop_scale": (lambda v: len(v) == 2 and 0 < v[0] <= v[1] <= 1, "(low, high) in (0, 1]",
                                     "two fractions, low <= high"),
    "data.augment.face_crop_ratio": (lambda v: len(v) == 2 and 0 < v[0] <= v[1], "(low, high) above 0",
                                     "two positive numbers, low <= high"),
    "model.mlp_ratio": _POSITIVE, "model.patch_size": _COUNT, "model.tubelet_size": _COUNT, "model.in_chans": _COUNT,
    "model.drop_rate": _FRACTION, "model.fc_drop_rate": _FRACTION, "model.drop_path_rate": _FRACTION,
    "model.init_values": _NON_NEGATIVE, "model.head_init_scale": _POSITIVE, "model.mask_ratio": _FRACTION,
    "model.layer_norm_eps": _POSITIVE, "model.head_layer_norm_eps": _POSITIVE,
}


def reference_config() -> ml_collections.ConfigDict:
    """Every field a run spec may have, with a default of its type."""
    reference = base_config()
    reference.update(EXTRA_FIELDS)
    return reference


def _leaves(node, prefix: str = "") -> dict[str, Any]:
    """``{"a.b": value}`` of every leaf of a ConfigDict (or dict)."""
    found = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, (ml_collections.ConfigDict, dict)):
            found.update(_leaves(value, name + "."))
        else:
            found[name] = value
    return found


def _type_fits(value, default) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (tuple, list)):
        return isinstance(value, (tuple, list)) and all(_type_fits(v, default[0]) for v in value) if default \
            else isinstance(value, (tuple, list))
    return isinstance(value, type(default))


def check_types(config: ml_collections.ConfigDict) -> None:
    """Every field is one of ``reference_config()``'s, of its default's type."""
    reference = _leaves(reference_config())
    for field, value in _leaves(config).items():
        if field not in reference:
            raise ConfigError(f"unknown config field {field}", "check its spelling; --print-config lists every field")
        default = reference[field]
        if not _type_fits(value, default):
            kind = type(default).__name__ if not isinstance(default, tuple) else f"tuple of {type(default[0]).__name__}"
            raise ConfigError(f"{field}={value!r} is not a {kind}", f"give --config.{field} a {kind} value")


def check_ranges(config: ml_collections.ConfigDict) -> None:
    leaves = _leaves(config)
    for field, (test, must, fix) in RANGES.items():
        if field in leaves:
            _range(field, leaves[field], test, must, fix)


def check_strategy(strategy: str, num_frames: int) -> None:
    """A known fusion strategy, and an even frame count for those that show every second frame."""
    _choice("data.strategy", strategy, choices.STRATEGIES)
    if strategy in choices.HALF_STRATEGIES and num_frames % 2:
        raise ConfigError(f"data.strategy={strategy!r} takes every second frame and needs an even "
                          f"data.num_frames, got {num_frames}", "give an even number of frames")


def check_mixing(sfas_mode: str, cfas_resize: str) -> None:
    """The options of the strategies that mix pixels: sfas's sum, cfas's height halving."""
    _choice("data.sfas_mode", sfas_mode, choices.SFAS_MODES)
    _choice("data.cfas_resize", cfas_resize, choices.CFAS_RESIZES)


def check_views(views) -> None:
    """A non-empty tuple of the eval step's test-time views."""
    if isinstance(views, str) or not views:
        raise ConfigError(f"eval.views={views!r} must be a non-empty tuple of views",
                          f"e.g. --config.eval.views=\"('identity',)\" from {', '.join(choices.EVAL_VIEWS)}")
    for view in views:
        _choice("eval.views", view, choices.EVAL_VIEWS)


def check_layout(frame_sampling: str, has_half_windows: bool) -> None:
    """The data config reads the stored build the way it was made: ``notebook_timing`` exactly for a
    'spanning' window layout build (the one that stores ``spectrogram_half``)."""
    _choice("data.frame_sampling", frame_sampling, choices.FRAME_SAMPLINGS)
    if frame_sampling == "notebook_timing" and not has_half_windows:
        raise ConfigError("data.frame_sampling='notebook_timing' needs a build made with window_layout='spanning' "
                          "(builder config notebook_mfcc, notebook_mfcc_10ms or notebook_mfcc_mono: it stores "
                          "spectrogram_half)", "build it with `mmae-jax prepare <dataset> --config notebook_mfcc ...`")
    if frame_sampling != "notebook_timing" and has_half_windows:
        raise ConfigError("the stored clips follow the original's timing (a 'spanning' window layout build: "
                          "frames from the clip start, windows over the whole clip)",
                          "read them with data.frame_sampling='notebook_timing' (recipe=multimae_der sets it)")


def check_read(data_cfg: ml_collections.ConfigDict) -> None:
    """How a clip is read and fused: the strategy and the options of reading, rendering and mixing."""
    defaults = default_data_config()      # a config saved before a field existed reads its default
    check_strategy(data_cfg.strategy, data_cfg.num_frames)
    check_mixing(data_cfg.get("sfas_mode", defaults.sfas_mode), data_cfg.get("cfas_resize", defaults.cfas_resize))
    for field, allowed in (("normalization", choices.NORMALIZATIONS), ("spectrogram_render", choices.RENDER_MODES),
                           ("frame_sampling", choices.FRAME_SAMPLINGS), ("rfas_order", choices.RFAS_ORDERS)):
        _choice(f"data.{field}", data_cfg.get(field, defaults[field]), allowed)


def check_data(data_cfg: ml_collections.ConfigDict) -> None:
    """The data config's names and their relations (no file is read)."""
    _choice("data.dataset", data_cfg.dataset, tuple(protocols.NUM_FOLDS))
    _choice("data.protocol", data_cfg.protocol, protocols.PROTOCOLS)
    check_read(data_cfg)
    if data_cfg.protocol in protocols.FOLD_PROTOCOLS:
        folds = protocols.num_folds(data_cfg.dataset)
        if not 0 <= data_cfg.fold < folds:
            raise ConfigError(f"{data_cfg.dataset} has folds 0..{folds - 1}, not fold={data_cfg.fold}",
                              f"choose a fold from 0 to {folds - 1}")


def check_model(config: ml_collections.ConfigDict) -> VideoMAEConfig:
    """The model fields build a ``VideoMAEConfig`` for the data's frames and image size (its own
    checks: the allowed kernels, norms, dtypes, and sizes that divide into patches and tubelets)."""
    fields = config.model.to_dict()
    _choice("model.variant", fields.pop("variant"), tuple(VARIANTS))
    try:
        return VideoMAEConfig.from_variant(config.model.variant, num_frames=config.data.num_frames,
                                           img_size=config.data.image_size, **fields)
    except ConfigError as error:
        raise ConfigError(f"model: {error.what}", error.fix or "see --print-config's model fields") from error


def check_command(config: ml_collections.ConfigDict, command: str | None = None) -> None:
    """``config.task`` is known, and ``command`` runs it (``choices.COMMAND_TASKS``)."""
    _choice("task", config.get("task"), tuple(choices.TASK_COMMANDS))
    task = choices.COMMAND_TASKS.get(command, config.task)
    if config.task != task:
        raise ConfigError(f"`mmae-jax {command}` runs the {task} task but the config's task is {config.task}",
                          f"run this config with `mmae-jax {choices.TASK_COMMANDS[config.task]}`")


def check_probe_init(config: ml_collections.ConfigDict) -> None:
    """A linear probe (frozen backbone) needs the backbone it probes: ``init`` must name a model
    directory, or be ``random`` to probe random weights on purpose. Without it the run would
    train a head on a random frozen encoder and report its numbers as if nothing were wrong."""
    if config.task == "classification" and config.mode == "linear_probe" and not config.init:
        raise ConfigError("mode=linear_probe freezes the backbone, but no init gives its weights",
                          "add --config.init=MODEL_DIR (a `mmae-jax convert` output, e.g. VideoMAE ViT-L "
                          "Kinetics-400), or --config.init=random to probe a random backbone on purpose")


def check_args(values: dict) -> None:
    """The ``get_config(arg)`` values a config file was given (strategy, variant, protocol, mode,
    fold, recipe); an empty protocol or mode means the recipe's."""
    for key, allowed in (("strategy", choices.STRATEGIES), ("variant", tuple(VARIANTS)),
                         ("protocol", protocols.PROTOCOLS), ("mode", choices.MODES), ("recipe", choices.RECIPES)):
        if values.get(key):
            _choice(key, values[key], allowed)
    if values.get("fold", 0) < 0:
        raise ConfigError(f"fold={values['fold']} is negative", "folds count from 0")


def validate_spec(config: ml_collections.ConfigDict, *, command: str | None = None) -> VideoMAEConfig:
    """Every check of the config that needs nothing outside it; returns the model config it builds.

    ``command``: the ``mmae-jax`` command about to run it (``train`` / ``pretrain`` check the task).
    """
    check_types(config)
    check_ranges(config)
    check_command(config, command)
    _choice("mode", config.mode, choices.MODES)
    check_data(config.data)
    check_views(config.eval.get("views", ("identity",)))
    check_mesh(config.mesh)
    if command is None or command in choices.COMMAND_TASKS:      # a run that trains or evaluates a model
        check_probe_init(config)
    return check_model(config)


def check_mesh(mesh_cfg: ml_collections.ConfigDict) -> None:
    """slices >= 1, fsdp >= 1 and data >= 1 or -1 (what the others leave of the devices)."""
    data_axis, fsdp, slices = mesh_cfg.data, mesh_cfg.fsdp, mesh_cfg.get("slices", 1)
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (data_axis, fsdp, slices)) or (
            fsdp < 1 or slices < 1 or data_axis == 0 or data_axis < -1):
        raise ConfigError(f"mesh slices={slices} x data={data_axis} x fsdp={fsdp} is not a mesh",
                          "give mesh.slices >= 1, mesh.fsdp >= 1 and mesh.data >= 1, or -1 for what the others leave")


def validate_devices(config: ml_collections.ConfigDict, device_count: int) -> None:
    """The mesh (slices x data x fsdp) fits ``device_count`` devices (every host's) and the batch
    sizes split evenly over them."""
    check_mesh(config.mesh)
    data_axis, fsdp, slices = config.mesh.data, config.mesh.fsdp, config.mesh.get("slices", 1)
    if data_axis == -1:
        if device_count % (fsdp * slices):
            raise ConfigError(f"mesh.slices={slices} x mesh.fsdp={fsdp} does not divide the {device_count} devices",
                              f"choose divisors of {device_count}")
        data_axis = device_count // (fsdp * slices)
    if slices * data_axis * fsdp != device_count:
        over = f" over {slices} slices" if slices != 1 else ""
        raise ConfigError(f"mesh data={data_axis} x fsdp={fsdp} needs {slices * data_axis * fsdp} devices{over}, "
                          f"but {device_count} are visible", "set --config.mesh.data=-1 to use every device")
    for field, value in (("batch_size", config.batch_size), ("eval.batch_size", config.eval.batch_size)):
        if value % device_count:
            raise ConfigError(f"{field}={value} does not split over the {device_count} devices",
                              f"choose a multiple of {device_count}")


def check_build(data_cfg: ml_collections.ConfigDict, builder_dir: Path) -> None:
    """The data config reads the stored build in ``builder_dir`` the way it was made (``check_layout``)."""
    try:
        features = json.loads((Path(builder_dir) / "features.json").read_text())
    except (OSError, ValueError):
        return      # not a TFDS build this check understands; opening it reports what is wrong
    try:
        check_layout(data_cfg.get("frame_sampling", "uniform"), "spectrogram_half" in json.dumps(features))
    except ConfigError as error:
        raise ConfigError(f"{error.what}; the build: {builder_dir}", error.fix) from error
