"""Checks of an experiment config made before any model is built or data is read.

``validate_experiment`` raises ConfigError for a value that can not give the run asked for
(a misspelled strategy, evaluation view, frame sampling or rfas order, a fold the dataset
does not have, a batch size or checkpoint cadence of 0, a mesh or batch that does not fit the
devices, a frame sampling the build was not made for, a data folder or ``init`` that does not
exist) and makes ``data.data_dir`` absolute, so the saved config still points at the data
when read from another folder. It runs before a workdir is created or touched.
"""

from __future__ import annotations

from pathlib import Path

import ml_collections

from mmae_jax.errors import ConfigError

MODES = ("finetune", "linear_probe")
RANDOM_INIT = "random"   # ``init=random``: start from random weights on purpose (a baseline)
EVAL_VIEWS = ("identity", "hflip")      # the test-time views of ``steps.make_eval_step``


def _choice(field: str, value, choices) -> None:
    if value not in choices:
        raise ConfigError(f"{field}={value!r} is not known", f"choose one of {', '.join(map(str, choices))}")


def _positive(field: str, value) -> None:
    if not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{field}={value!r} must be a positive integer", f"set --config.{field} to 1 or more")


def validate_config_args(values: dict) -> None:
    """The ``get_config(arg)`` values a config file was given (strategy, variant, protocol, mode, fold)."""
    from data_prep import protocols
    from mmae_jax.data.fusion import STRATEGIES
    from mmae_jax.model.config import VARIANTS

    for key, choices in (("strategy", STRATEGIES), ("variant", tuple(VARIANTS)), ("protocol", protocols.PROTOCOLS),
                         ("mode", MODES)):
        if key in values:
            _choice(key, values[key], choices)
    if values.get("fold", 0) < 0:
        raise ConfigError(f"fold={values['fold']} is negative", "folds count from 0")


def validate_choices(config: ml_collections.ConfigDict) -> None:
    """The config's names and counts (no file system access)."""
    from data_prep import protocols
    from mmae_jax.data import clip_layout
    from mmae_jax.data.fusion import CFAS_RESIZES, SFAS_MODES, STRATEGIES
    from mmae_jax.data.normalize import NORMALIZATIONS
    from mmae_jax.data.render import RENDER_MODES
    from mmae_jax.model.config import VARIANTS
    from mmae_jax.train.tasks import task_spec

    data = config.data
    task_spec(config)
    _choice("data.strategy", data.strategy, STRATEGIES)
    _choice("model.variant", config.model.variant, tuple(VARIANTS))
    _choice("mode", config.mode, MODES)
    _choice("data.dataset", data.dataset, tuple(protocols.NUM_FOLDS))
    _choice("data.protocol", data.protocol, protocols.PROTOCOLS)
    _choice("data.normalization", data.normalization, tuple(NORMALIZATIONS))
    _choice("data.spectrogram_render", data.spectrogram_render, RENDER_MODES)
    _choice("data.sfas_mode", data.sfas_mode, SFAS_MODES)
    _choice("data.cfas_resize", data.get("cfas_resize", "mean"), CFAS_RESIZES)
    _choice("data.frame_sampling", data.get("frame_sampling", "uniform"), clip_layout.FRAME_SAMPLINGS)
    _choice("data.rfas_order", data.get("rfas_order", "per_step"), clip_layout.RFAS_ORDERS)
    views = config.eval.get("views", ("identity",))
    if isinstance(views, str) or not views:
        raise ConfigError(f"eval.views={views!r} must be a non-empty tuple of views",
                          f"e.g. --config.eval.views=\"('identity',)\" from {', '.join(EVAL_VIEWS)}")
    for view in views:
        _choice("eval.views", view, EVAL_VIEWS)
    if data.protocol in protocols.FOLD_PROTOCOLS:
        folds = protocols.num_folds(data.dataset)
        if not (isinstance(data.fold, int) and 0 <= data.fold < folds):
            raise ConfigError(f"{data.dataset} has folds 0..{folds - 1}, not fold={data.fold}",
                              f"choose a fold from 0 to {folds - 1}")
    for field in ("batch_size", "num_epochs", "eval.batch_size", "log_every_steps", "data.num_frames",
                  "data.image_size", "optim.grad_accum_steps", "eval.every_epochs", "checkpoint.every_steps",
                  "checkpoint.keep"):
        node = config
        for key in field.split("."):
            node = node[key]
        _positive(field, node)
    patch, tubelet = config.model.get("patch_size", 16), config.model.get("tubelet_size", 2)
    if data.image_size % patch or data.num_frames % tubelet:
        raise ConfigError(f"data.image_size={data.image_size} and data.num_frames={data.num_frames} must be "
                          f"multiples of the patch size {patch} and tubelet size {tubelet}",
                          "change them to multiples")


def validate_devices(config: ml_collections.ConfigDict, device_count: int | None = None) -> None:
    """The mesh fits the devices and the batch sizes split evenly over them.

    ``device_count``: the devices of the run (default: ``jax.device_count()``, every host's).
    """
    if device_count is None:
        import jax
        device_count = jax.device_count()
    data_axis, fsdp, slices = config.mesh.data, config.mesh.fsdp, config.mesh.get("slices", 1)
    if not all(isinstance(n, int) for n in (data_axis, fsdp, slices)) or fsdp < 1 or slices < 1 or (
            data_axis == 0 or data_axis < -1):
        raise ConfigError(f"mesh slices={slices} x data={data_axis} x fsdp={fsdp} is not a mesh",
                          "give mesh.slices >= 1, mesh.fsdp >= 1 and mesh.data >= 1, or -1 for what the others leave")
    if data_axis == -1:
        if device_count % (fsdp * slices):
            raise ConfigError(f"mesh.slices={slices} x mesh.fsdp={fsdp} does not divide the {device_count} devices",
                              f"choose divisors of {device_count}")
        data_axis = device_count // (fsdp * slices)
    if slices * data_axis * fsdp != device_count:
        raise ConfigError(f"mesh slices={slices} x data={data_axis} x fsdp={fsdp} needs {slices * data_axis * fsdp} "
                          f"devices, but {device_count} are visible", "set --config.mesh.data=-1 to use every device")
    for field in ("batch_size", "eval.batch_size"):
        value = config.batch_size if field == "batch_size" else config.eval.batch_size
        if value % device_count:
            raise ConfigError(f"{field}={value} does not split over the {device_count} devices",
                              f"choose a multiple of {device_count}")


def validate_build(config: ml_collections.ConfigDict, builder_dir: Path) -> None:
    """The data config reads the stored build the way it was made (``clip_layout.check_layout``)."""
    import json

    from mmae_jax.data import clip_layout

    try:
        features = json.loads((builder_dir / "features.json").read_text())
    except (OSError, ValueError):
        return      # not a TFDS build this check understands; opening it reports what is wrong
    has_half = "spectrogram_half" in json.dumps(features)
    try:
        clip_layout.check_layout(config.data.get("frame_sampling", "uniform"), has_half)
    except ValueError as error:
        raise ConfigError(f"data.frame_sampling={config.data.get('frame_sampling', 'uniform')!r} does not fit "
                          f"the build {builder_dir}: {error}") from error


def validate_paths(config: ml_collections.ConfigDict) -> None:
    """``data.data_dir`` holds the built dataset (made absolute) of the layout the data config
    reads; ``init`` is a model directory."""
    from mmae_jax.data.source import stored_builder_dir
    from mmae_jax.model.location import resolve_model_dir as resolve_init

    data = config.data
    if data.data_dir and "://" not in data.data_dir:
        data.data_dir = str(Path(data.data_dir).expanduser().absolute())
    try:
        builder_dir = stored_builder_dir(data.data_dir, data.dataset, data.builder_config)
    except FileNotFoundError as error:
        raise ConfigError(f"data.data_dir={data.data_dir or '(TFDS default)'}: {error}") from error
    validate_build(config, builder_dir)
    if config.init and config.init != RANDOM_INIT:
        resolve_init(config.init)


def init_path(init: str) -> str:
    """The model directory ``init`` names, or "" when there is none to load (unset or ``random``)."""
    return "" if init == RANDOM_INIT else init


def validate_probe_init(config: ml_collections.ConfigDict) -> None:
    """A linear probe (frozen backbone) needs the backbone it probes: ``init`` must name a model
    directory, or be ``random`` to probe random weights on purpose. Without it the run would
    train a head on a random frozen encoder and report its numbers as if nothing were wrong."""
    if config.get("task", "classification") == "classification" and config.mode == "linear_probe" \
            and not config.init:
        raise ConfigError("mode=linear_probe freezes the backbone, but no init gives its weights",
                          "add --config.init=MODEL_DIR (a `mmae-jax convert` output, e.g. VideoMAE ViT-L "
                          "Kinetics-400), or --config.init=random to probe a random backbone on purpose")


def validate_experiment(config: ml_collections.ConfigDict) -> None:
    """Every check above; raises ConfigError naming the field and the fix."""
    validate_choices(config)
    validate_probe_init(config)
    validate_devices(config)
    validate_paths(config)
