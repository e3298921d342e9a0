"""Checkpoint -> mmae_jax model: check every name and shape, report all problems at once, write.

``convert`` works in memory (used by ``compare`` and the tests); ``convert_checkpoint`` reads
a file or folder and writes a model directory (``mmae_jax.model.io`` format) only when the
whole checkpoint fits.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from flax import nnx

from mmae_jax.convert.families import SourceModel, describe_source, detect_family, target_config
from mmae_jax.convert.name_map import Mapping, apply, name_map, normalise_hf_names, source_shapes
from mmae_jax.convert.torch_loading import CheckpointError, LoadedCheckpoint, load_checkpoint
from mmae_jax.model.config import VideoMAEConfig
from mmae_jax.model.io import abstract_model, assign_params, build_model, param_shapes, save_model
from mmae_jax.model.position import sinusoid_position_table

# Parts of a pre-training model that a classifier has no place for.
CLASSIFIER_DROPS = ("decoder.", "encoder_to_decoder.", "mask_token", "encoder.norm.")
POSITION_TABLE_NAMES = ("pos_embed", "position_embeddings")


@dataclasses.dataclass
class ConversionResult:
    """The converted model and an account of every tensor."""

    model: nnx.Module
    cfg: VideoMAEConfig
    kind: str                      # "classifier" or "pretrainer"
    family: str
    source: SourceModel
    loaded: list[str]              # target parameter paths filled from the checkpoint
    fresh: list[str]               # target parameters left at their initial values (new head ...)
    dropped: list[str]             # checkpoint keys deliberately not used (decoder, old head ...)
    notes: list[str]

    def summary(self) -> str:
        lines = [f"family {self.family}, variant {self.cfg.variant}, model {self.kind}: "
                 f"{len(self.loaded)} parameters converted"]
        lines += [f"note: {note}" for note in self.notes]
        if self.fresh:
            lines.append(f"initialised fresh: {', '.join(self.fresh)}")
        if self.dropped:
            lines.append(f"not used from the checkpoint: {_abbreviate(self.dropped)}")
        return "\n".join(lines)


def convert(checkpoint: LoadedCheckpoint, *, variant: str | None = None, num_classes: int | None = None,
            keep_decoder: bool = False, num_frames: int | None = None, img_size: int | None = None,
            seed: int = 0) -> ConversionResult:
    """Map, check and load ``checkpoint`` into a new model; raises ``CheckpointError`` listing every problem."""
    tensors = normalise_hf_names(checkpoint.tensors)
    family = detect_family(tensors, checkpoint.hf_config)
    source = describe_source(tensors, family, checkpoint.hf_config)
    kind = "pretrainer" if keep_decoder else "classifier"
    if keep_decoder and source.decoder is None:
        raise CheckpointError(f"{checkpoint.path}: --keep-decoder needs a pre-training checkpoint; "
                              f"this {family} checkpoint has no decoder")
    cfg = target_config(source, variant=variant, num_classes=num_classes, num_frames=num_frames,
                        img_size=img_size)
    targets = param_shapes(abstract_model(cfg, kind))
    notes, droppable, allowed_fresh = _policy(source, cfg, kind)

    problems: list[str] = []
    arrays: dict[str, np.ndarray] = {}
    used, dropped = set(), []
    for mapping in name_map(source):
        used.update(mapping.sources)
        if mapping.target not in targets or mapping.target.startswith(allowed_fresh):
            if mapping.target.startswith(droppable):
                dropped += [name for name in mapping.sources if name in tensors]
            else:
                problems.append(f"{_names(mapping)}: the {cfg.variant} model has no parameter "
                                f"{mapping.target} (a checkpoint of another variant?)")
            continue
        found = _check(mapping, tensors, targets[mapping.target], problems)
        if found:
            arrays[mapping.target] = apply(mapping, tensors, targets[mapping.target])
            bad = int(np.size(arrays[mapping.target]) - np.isfinite(arrays[mapping.target]).sum())
            if bad:
                problems.append(f"{_names(mapping)}: {bad} NaN or infinite values (a diverged or damaged "
                                f"checkpoint)")
    fresh = [path for path in targets if path not in arrays]
    problems += [f"model parameter {path} {list(targets[path])}: no tensor in the checkpoint makes it"
                 for path in fresh if not path.startswith(allowed_fresh)
                 and not any(_problem_mentions(problem, path) for problem in problems)]
    for name in sorted(set(tensors) - used):
        if name.split(".")[-1] in POSITION_TABLE_NAMES:
            problems += _check_position_table(name, tensors[name])
            dropped.append(name)
        else:
            problems.append(f"unexpected key {name} {list(tensors[name].shape)}: not part of a "
                            f"{family} VideoMAE checkpoint")
    if problems:
        raise CheckpointError(f"{checkpoint.path}: cannot convert this {family} checkpoint into the "
                              f"{cfg.variant} {kind}; {len(problems)} problem(s), nothing was written:\n"
                              + "\n".join(f"  - {problem}" for problem in problems))
    model = build_model(cfg, kind, seed=seed)
    assign_params(model, arrays)
    return ConversionResult(model, cfg, kind, family, source, sorted(arrays), fresh, dropped, notes)


def convert_checkpoint(source: str | Path, output: str | Path, *, trust_pickle: bool = False,
                       **options) -> ConversionResult:
    """Read ``source``, convert it (``options`` as for ``convert``) and write a model directory."""
    output = Path(output)
    if output.exists() and any(output.iterdir()):
        raise FileExistsError(f"{output} exists and is not empty; choose a new output directory")
    checkpoint = load_checkpoint(source, trust_pickle=trust_pickle)
    result = convert(checkpoint, **options)
    metadata = dict(source=checkpoint.hub_id or str(Path(source).absolute()), family=result.family,
                    wrapper_entry=checkpoint.entry, fresh=result.fresh, dropped=result.dropped, notes=result.notes)
    if checkpoint.hub_id:
        metadata["hub_snapshot"] = str(checkpoint.path.parent)
    names = checkpoint.class_names
    if result.kind == "classifier" and names and len(names) == result.cfg.num_classes and \
            not any(path.startswith("head.") for path in result.fresh):
        metadata["class_names"] = names       # the head was converted, so its labels hold
    save_model(output, result.model, result.cfg, kind=result.kind, metadata=metadata)
    return result


def _policy(source: SourceModel, cfg: VideoMAEConfig, kind: str
            ) -> tuple[list[str], tuple[str, ...], tuple[str, ...]]:
    """(notes, target prefixes that may be dropped, target prefixes that may stay fresh)."""
    notes: list[str] = []
    if kind == "pretrainer":
        return notes, ("head.", "fc_norm."), ()
    droppable, fresh = CLASSIFIER_DROPS, ()
    if source.decoder is not None:
        notes.append("pre-training checkpoint: the encoder is kept, its decoder dropped "
                     "(--keep-decoder keeps it)")
    if source.num_classes is None:
        notes.append(f"the checkpoint has no classification head: a new head for {cfg.num_classes} classes")
        fresh += ("head.",)
    elif source.num_classes != cfg.num_classes:
        notes.append(f"head re-initialised for {cfg.num_classes} classes (the checkpoint's has "
                     f"{source.num_classes})")
        droppable += ("head.",)
        fresh += ("head.",)
    if cfg.use_mean_pooling and not source.has_fc_norm:
        notes.append("fc_norm initialised fresh (the checkpoint has none)")
        fresh += ("fc_norm.",)
    return notes, droppable, fresh


def _check(mapping: Mapping, tensors: dict[str, np.ndarray], target_shape: tuple[int, ...],
           problems: list[str]) -> bool:
    """Record missing sources and shape mismatches of one mapping; True when it is usable."""
    ok = True
    for name, expected in zip(mapping.sources, source_shapes(mapping, target_shape)):
        if name not in tensors:
            problems.append(f"missing key {name}: the model expects {list(expected)} "
                            f"(for {mapping.target} {list(target_shape)})")
            ok = False
        elif tuple(tensors[name].shape) != tuple(expected):
            problems.append(f"shape mismatch {name}: checkpoint {list(tensors[name].shape)}, model expects "
                            f"{list(expected)} (for {mapping.target} {list(target_shape)})")
            ok = False
    return ok


def _problem_mentions(problem: str, path: str) -> bool:
    """True when ``problem`` already names target ``path`` (so it is not reported twice)."""
    return f"for {path} " in problem


def _check_position_table(name: str, table: np.ndarray) -> list[str]:
    """A stored position table is skipped if it is the fixed sine-cosine one, else reported."""
    flat = table.reshape(-1, table.shape[-1])
    expected = sinusoid_position_table(*flat.shape)
    if np.allclose(flat, expected, atol=1e-5):
        return []
    return [f"{name} {list(table.shape)}: a learned position table (it differs from the fixed sine-cosine "
            f"table by up to {np.abs(flat - expected).max():.3g}); this model only has the fixed table"]


def _names(mapping: Mapping) -> str:
    return ", ".join(mapping.sources) or "(no source)"


def _abbreviate(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
