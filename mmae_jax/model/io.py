"""The model checkpoint format shared by conversion, training (initial weights) and ``forward``.

A model directory holds:

- ``config.json``: ``{"format": 1, "kind": "classifier" | "pretrainer", "model": cfg.to_dict(),
  "metadata": {...}}`` (metadata such as the source checkpoint and its family);
- ``params/``: an orbax checkpoint of the ``nnx.Param`` state as a plain nested dict
  (``nnx.State.to_pure_dict``), e.g. ``{"encoder": {"blocks": {0: {"attn": {"qkv": {"kernel": ...}}}}}}``.

Parameters are named by their dotted path (mmae_jax/model/paths.py), e.g.
``encoder.blocks.3.attn.qkv.kernel``. Every read restores only the tensors it needs (orbax
partial restore, ``read_params``). The readers take the weights from the directory's ``params/``,
or from another orbax checkpoint given as ``SavedParams`` (a train checkpoint's ``state``, whose
``trainable`` and ``frozen`` subtrees hold the same names) with the directory's config.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from flax import nnx

from mmae_jax.errors import InputError, MissingInputError, UserError, one_line_cause
from mmae_jax.model.config import VideoMAEConfig
from mmae_jax.model.kinds import model_class as kind_class
from mmae_jax.model.paths import flat_params, param_name

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
PARAMS_DIR = "params"


@dataclasses.dataclass(frozen=True)
class SavedParams:
    """Where a model's parameters are saved: the orbax checkpoint ``path``, holding them at its
    root (a model directory's ``params/``) or, with ``groups``, under those top-level keys (a
    train checkpoint's ``state`` item: ``("trainable", "frozen")``, beside the optimiser state)."""

    path: Path
    groups: tuple[str, ...] = ()
    damaged_fix: str = "the model directory is damaged or incomplete; convert or export it again"

    @classmethod
    def of_directory(cls, directory: str | Path) -> "SavedParams":
        return cls(Path(directory).absolute() / PARAMS_DIR)


def build_model(cfg: VideoMAEConfig, kind: str, *, seed: int = 0) -> nnx.Module:
    """A freshly initialised model of ``kind`` ("classifier" or "pretrainer")."""
    return kind_class(kind)(cfg, rngs=nnx.Rngs(seed))


def abstract_model(cfg: VideoMAEConfig, kind: str) -> nnx.Module:
    """The model of ``kind`` with ``jax.ShapeDtypeStruct`` leaves (no memory allocated)."""
    model_class = kind_class(kind)
    return nnx.eval_shape(lambda: model_class(cfg, rngs=nnx.Rngs(0)))


def param_shapes(model: nnx.Module) -> dict[str, tuple[int, ...]]:
    """Dotted parameter path -> shape, for every ``nnx.Param`` of ``model``."""
    return {path: tuple(value.shape) for path, value in flat_params(model).items()}


def save_model(directory: str | Path, model: nnx.Module, cfg: VideoMAEConfig, *, kind: str,
               metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s parameters and ``cfg`` to ``directory`` (created; must not hold a model).

    Blocks until orbax has finished writing. Returns the directory as an absolute path.
    """
    kind_class(kind)
    directory = Path(directory).absolute()
    if (directory / CONFIG_FILE).exists() or (directory / PARAMS_DIR).exists():
        raise FileExistsError(f"{directory} already holds a model; choose a new directory")
    directory.mkdir(parents=True, exist_ok=True)
    params = nnx.state(model, nnx.Param).to_pure_dict()
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(directory / PARAMS_DIR, params)
    checkpointer.wait_until_finished()
    if jax.process_index() == 0:
        document = dict(format=FORMAT_VERSION, kind=kind, model=cfg.to_dict(), metadata=metadata or {})
        (directory / CONFIG_FILE).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return directory


def read_config(directory: str | Path) -> tuple[VideoMAEConfig, str, dict[str, Any]]:
    """``(cfg, kind, metadata)`` from a model directory's ``config.json``."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise MissingInputError(f"{path} not found: {directory} is not a model directory",
                                "pass a folder written by `mmae-jax convert` or by training")
    try:
        document = json.loads(path.read_text())
        cfg = VideoMAEConfig.from_dict(document["model"])
        kind = document["kind"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise InputError(f"{path}: not a valid model config ({error})",
                         "the model directory is damaged; convert or export it again") from error
    kind_class(kind)
    return cfg, kind, document.get("metadata", {})


def load_model(directory: str | Path, *, overrides: dict[str, Any] | None = None,
               params: SavedParams | None = None) -> tuple[nnx.Module, VideoMAEConfig, str]:
    """Rebuild the saved model with its weights: ``(model, cfg, kind)``.

    ``overrides`` replace config fields that do not change parameter shapes (``dtype``,
    ``drop_path_rate``, ``remat_policy`` ...). To load into a model of another shape (a
    new head, a classifier from a pretrainer) build that model and call ``restore_into``.
    ``params``: read the weights from there instead of ``directory/params``.
    """
    cfg, kind, _ = read_config(directory)
    if overrides:
        cfg = cfg.replace(**overrides)
    model = abstract_model(cfg, kind)
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    wanted = {path: jax.ShapeDtypeStruct(value.shape, value.dtype, sharding=device)
              for path, value in flat_params(model).items()}
    values, report = load_matching(directory, wanted, params=params)
    if not report.complete:
        raise InputError(f"{directory}: the saved parameters do not fit the model built from its config"
                         f"{' with overrides ' + str(overrides) if overrides else ''}: {report.one_line()}",
                         "the model directory is damaged; convert or export it again")
    graphdef, params, _ = nnx.split(model, nnx.Param, ...)
    model = nnx.merge(graphdef, params, non_param_state(cfg, kind))
    assign_params(model, values)
    return model, cfg, kind


def non_param_state(cfg: VideoMAEConfig, kind: str, *, seed: int = 0, sharding=None) -> nnx.State:
    """The state of a ``kind`` model that is not a parameter (dropout streams), computed alone:
    under ``jax.jit`` the parameter initialisers are dead code. ``sharding``: where it is placed
    (default: the default device)."""
    model_class = kind_class(kind)
    placement = {} if sharding is None else dict(out_shardings=sharding)
    return jax.jit(lambda: nnx.split(model_class(cfg, rngs=nnx.Rngs(seed)), nnx.Param, ...)[2], **placement)()


@dataclasses.dataclass(frozen=True)
class RestoreReport:
    """What ``restore_into`` did, by dotted parameter path."""

    loaded: tuple[str, ...]
    left_at_init: tuple[str, ...]           # in the model, not in the checkpoint
    unused: tuple[str, ...]                 # in the checkpoint, not in the model
    shape_mismatches: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]  # (path, saved, model)

    @property
    def complete(self) -> bool:
        """True when every parameter of the model was loaded and every saved one was used."""
        return not (self.left_at_init or self.unused or self.shape_mismatches)

    def one_line(self) -> str:
        """The problems, each tensor named once, on one line."""
        parts = [f"{path} saved {list(saved)} model {list(model)}" for path, saved, model in self.shape_mismatches]
        parts += [f"{path} missing" for path in self.left_at_init]
        parts += [f"{path} unused" for path in self.unused]
        return "; ".join(parts) or "complete"

    def describe(self) -> str:
        lines = [f"loaded {len(self.loaded)} parameters"]
        lines += [f"  shape mismatch, left at init: {path} saved {saved} model {model}"
                  for path, saved, model in self.shape_mismatches]
        lines += [f"  left at init (not in checkpoint): {path}" for path in self.left_at_init]
        lines += [f"  unused (not in model): {path}" for path in self.unused]
        return "\n".join(lines)


def restore_into(model: nnx.Module, directory: str | Path) -> RestoreReport:
    """Copy every saved parameter whose path and shape match into ``model`` (in place).

    Only those tensors are read. Parameters land with the sharding of the model's current
    arrays. A parameter whose shape differs at the same path is left at init and listed in
    ``shape_mismatches``.
    """
    values, report = load_matching(directory, flat_params(model))
    assign_params(model, values)
    return report


def load_matching(directory: str | Path, current: dict[str, Any], *, params: SavedParams | None = None
                  ) -> tuple[dict[str, jax.Array], RestoreReport]:
    """The saved tensors whose name and shape match one of ``current`` (name -> array or
    ShapeDtypeStruct), read alone and placed with ``current``'s shardings, and the report.
    ``params``: where the tensors are saved (default: ``directory/params``)."""
    params = params or SavedParams.of_directory(directory)
    saved_trees = _saved_trees(directory, params)
    saved = {param_name(path): meta for tree in saved_trees.values()
             for path, meta in jax.tree_util.tree_flatten_with_path(tree)[0]}
    matched, mismatches = {}, []
    for path, value in current.items():
        if path not in saved:
            continue
        saved_shape, model_shape = tuple(saved[path].shape), tuple(value.shape)
        if saved_shape == model_shape:
            matched[path] = jax.ShapeDtypeStruct(saved_shape, saved[path].dtype,
                                                 sharding=getattr(value, "sharding", None))
        else:
            mismatches.append((path, saved_shape, model_shape))
    report = RestoreReport(
        loaded=tuple(matched),
        left_at_init=tuple(path for path in current if path not in saved),
        unused=tuple(path for path in saved if path not in current),
        shape_mismatches=tuple(mismatches))
    return _restore(params, saved_trees, matched), report


def read_params(directory: str | Path, wanted: dict[str, jax.ShapeDtypeStruct]) -> dict[str, jax.Array]:
    """The saved tensors named in ``wanted`` and nothing else (orbax partial restore), each
    placed with its ShapeDtypeStruct's sharding; InputError when one is not saved or has
    another shape."""
    values, report = load_matching(directory, wanted)
    if report.left_at_init or report.shape_mismatches:
        problems = dataclasses.replace(report, unused=()).one_line()
        raise InputError(f"{directory}: the saved parameters do not fit the model ({problems})",
                         "the model directory is damaged or of another model; convert or export it again")
    return values


def _saved_trees(directory: str | Path, params: SavedParams) -> dict[str, dict]:
    """The metadata trees of the saved parameters: ``{"": tree}``, or one per group of ``params``."""
    if not params.path.is_dir():
        raise MissingInputError(f"{params.path} not found: {directory} is not a model directory",
                                "pass a folder written by `mmae-jax convert` or by training")
    with _damaged_params(params):
        metadata = ocp.StandardCheckpointer().metadata(params.path)
        saved_tree = getattr(getattr(metadata, "item_metadata", None), "tree", None)
        if not saved_tree:
            raise ValueError("no parameter metadata")
        trees = {group: saved_tree.get(group) or {} for group in params.groups} if params.groups else {"": saved_tree}
    return trees


def _restore(params: SavedParams, saved_trees: dict[str, dict], wanted: dict[str, jax.ShapeDtypeStruct]
             ) -> dict[str, jax.Array]:
    """The ``wanted`` tensors of ``params`` alone, by name (``saved_trees`` gives the nesting)."""
    def prune(tree: dict, prefix: str) -> dict:
        kept = {}
        for key, value in tree.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                if sub := prune(value, name + "."):
                    kept[key] = sub
            elif name in wanted:
                kept[key] = wanted[name]
        return kept

    targets = {group: pruned for group, tree in saved_trees.items() if (pruned := prune(tree, ""))}
    if not targets:
        return {}
    target = targets.get("", targets)
    with _damaged_params(params):
        restored = ocp.PyTreeCheckpointer().restore(params.path, args=ocp.args.PyTreeRestore(
            item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target), partial_restore=True))
    if "" in targets:
        return flat_params(restored)
    return {name: value for group in targets for name, value in flat_params(restored[group]).items()}


@contextlib.contextmanager
def _damaged_params(params: SavedParams):
    """orbax / tensorstore failures while reading ``params`` as one InputError line."""
    try:
        yield
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        if isinstance(error, UserError) or (isinstance(error, OSError) and one_line_cause(error)):
            raise
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise InputError(f"{params.path} can not be read ({first_line})", params.damaged_fix) from error


def check_training_metadata(directory: str | Path, cfg: VideoMAEConfig, metadata: dict[str, Any]) -> None:
    """InputError when a trained model's metadata no longer fits its model: a class list of
    another length than the head, or a data config whose frames / image size differ."""
    names = metadata.get("class_names", [])
    data = metadata.get("data", {})
    problems = []
    if len(names) != cfg.num_classes:
        problems.append(f"{len(names)} class_names for a head of {cfg.num_classes} classes")
    if data.get("num_frames", cfg.num_frames) != cfg.num_frames:
        problems.append(f"data.num_frames {data['num_frames']} but the model reads {cfg.num_frames}")
    if data.get("image_size", cfg.img_size) != cfg.img_size:
        problems.append(f"data.image_size {data['image_size']} but the model reads {cfg.img_size}")
    if problems:
        raise InputError(f"{Path(directory) / CONFIG_FILE}: the metadata does not fit the model ({'; '.join(problems)})",
                         "restore the config.json written with the model, or export the model again")


def assign_params(model: nnx.Module, arrays: dict[str, Any]) -> None:
    """Set the ``nnx.Param`` at each dotted path of ``arrays`` (in place; shapes must match).

    Values keep the parameter's dtype; a ``jax.Array`` keeps its sharding.
    """
    flat_state = nnx.to_flat_state(nnx.state(model, nnx.Param))
    for key_path, variable in flat_state:
        path = param_name(key_path)
        if path in arrays:
            value = arrays[path]
            if tuple(value.shape) != tuple(variable.value.shape):
                raise ValueError(f"{path}: shape {tuple(value.shape)} does not fit the parameter's "
                                 f"{tuple(variable.value.shape)}")
            variable.value = jnp.asarray(value, dtype=variable.value.dtype)
    nnx.update(model, nnx.from_flat_state(flat_state))
