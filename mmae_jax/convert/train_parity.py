"""Training parity: N optimiser steps of one checkpoint in PyTorch and, converted, in JAX.

The JAX side is the project's own training path: ``make_optimizer`` (parameter masks,
layer-wise lr decay, schedule), ``classification_loss`` (label smoothing) and
``make_train_step``, over a state made by ``create_train_state``. The PyTorch side is
``torch_reference.VisionTransformer`` trained by ``torch_recipe.VideoMAERecipe``, written
after VideoMAE's own optimiser code. Both start from the checkpoint's weights and read the
optimiser recipe from the same experiment config; each step both see the same batch:
``video [B, T, H, W, C]`` drawn from N(0, 1) (already normalised pixels) and random labels.

Randomness that the two frameworks cannot share is switched off and listed in
``TrainParityReport.switched_off``: dropout, attention dropout and drop path (the model is
built without them) and Mixup / CutMix. The schedule is sized as VideoMAE sizes it:
``config.num_epochs`` epochs of ``steps_per_epoch`` steps.
"""

from __future__ import annotations

import copy
import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmae_jax.convert.converter import ConversionResult, convert
from mmae_jax.convert.name_map import apply, name_map
from mmae_jax.convert.torch_loading import LoadedCheckpoint, require_torch
from mmae_jax.errors import ConfigError, InputError
from mmae_jax.model.config import VideoMAEConfig
from mmae_jax.model.encoder import trainable_filter
from mmae_jax.model.io import assign_params, build_model
from mmae_jax.model.paths import flat_params
from mmae_jax.train.assembly import assemble
from mmae_jax.train.steps import create_train_state, split_model

# (config path, value the comparison needs): randomness the frameworks cannot share.
RANDOMNESS = (("model.drop_rate", 0.0), ("model.fc_drop_rate", 0.0), ("model.drop_path_rate", 0.0),
              ("optim.mixup_alpha", 0.0), ("optim.cutmix_alpha", 0.0))
# Parameters a linear probe trains: the classification head and the LayerNorm before it.
PROBE_PREFIXES = ("head.", "fc_norm.")


def relative_difference(reference: float, ours: float) -> float:
    """``|reference - ours| / |reference|`` (0 when both are 0)."""
    if reference == ours:
        return 0.0
    return abs(reference - ours) / max(abs(reference), 1e-30)


@dataclasses.dataclass(frozen=True)
class StepComparison:
    """One optimiser step: the loss and gradient norm before the update, and the base lr used."""

    step: int
    torch_loss: float
    jax_loss: float
    torch_grad_norm: float
    jax_grad_norm: float
    torch_lr: float
    jax_lr: float

    def relative(self) -> dict[str, float]:
        return dict(loss=relative_difference(self.torch_loss, self.jax_loss),
                    grad_norm=relative_difference(self.torch_grad_norm, self.jax_grad_norm),
                    lr=relative_difference(self.torch_lr, self.jax_lr))


@dataclasses.dataclass(frozen=True)
class GroupComparison:
    """A PyTorch parameter group after the last step: the largest difference between the two
    sides and how far the group moved from the checkpoint (both max abs over its tensors)."""

    group: str
    num_tensors: int
    lr_scale: float
    weight_decay: float
    max_abs: float
    max_moved: float

    @property
    def relative(self) -> float:
        """Difference relative to the distance moved: 0 when both sides took the same path."""
        return self.max_abs / self.max_moved if self.max_moved > 0 else float(self.max_abs > 0)


@dataclasses.dataclass
class TrainParityReport:
    conversion: ConversionResult
    model_cfg: VideoMAEConfig          # the model both sides trained
    switched_off: list[str]
    steps: list[StepComparison]
    groups: list[GroupComparison]

    def failures(self, tolerance: float, param_tolerance: float = 0.0) -> list[str]:
        """Every step quantity whose relative difference exceeds ``tolerance``; with
        ``param_tolerance`` > 0 also every group whose parameters differ by more than that
        fraction of the distance they moved.

        The groups are not judged by default: a small update (a deep model's embedding at
        layer scale 0.75 ** 13 and a warm-up lr) moves a weight by a few float32 steps of its
        value, so both sides' rounding alone can reach a few percent of the distance moved.
        """
        found = [f"step {s.step}: relative {name} difference {value:.3e} > {tolerance:g}"
                 for s in self.steps for name, value in s.relative().items() if value > tolerance]
        if param_tolerance > 0:
            found += [f"group {g.group}: parameters differ by {g.relative:.3e} of the distance they moved "
                      f"(> {param_tolerance:g})" for g in self.groups if g.relative > param_tolerance]
        return found


def comparison_config(config: ml_collections.ConfigDict) -> tuple[ml_collections.ConfigDict, list[str]]:
    """A copy of ``config`` with the unshareable randomness off, and what was switched off."""
    config = copy.deepcopy(config)
    switched_off = []
    for path, value in RANDOMNESS:
        section, field = path.split(".")
        block = config[section]
        if field in block and block[field] != value:
            switched_off.append(f"{path} {block[field]:g} -> {value:g}")
            block[field] = value
    return config, switched_off


def run_training_parity(checkpoint: LoadedCheckpoint, config: ml_collections.ConfigDict, *, steps: int,
                        batch: int = 2, seed: int = 0, variant: str | None = None,
                        num_frames: int | None = None, img_size: int | None = None,
                        steps_per_epoch: int = 1) -> TrainParityReport:
    """Train ``steps`` steps on both sides from ``checkpoint`` with ``config``'s recipe; compare."""
    torch = require_torch()
    config, switched_off = comparison_config(config)
    optim = config.optim
    total_steps = config.num_epochs * steps_per_epoch
    if optim.grad_accum_steps != 1:
        raise ConfigError(f"optim.grad_accum_steps is {optim.grad_accum_steps}; the comparison runs one batch "
                          f"per update", "pass --config.optim.grad_accum_steps=1")
    if not 0 < steps <= total_steps:
        raise ConfigError(f"--train-steps {steps} must lie in 1 ... {total_steps} (num_epochs x steps per "
                          f"epoch)", "lower --train-steps or raise --steps-per-epoch")
    result = convert(checkpoint, variant=variant, num_frames=num_frames, img_size=img_size)
    if result.family != "official-finetune":
        raise InputError(f"{checkpoint.path}: --train-steps needs an official fine-tuned VideoMAE checkpoint "
                         f"(modeling_finetune.py names); this one is {result.family}",
                         "compare a checkpoint with patch_embed.*, blocks.*, head.*")
    linear_probe = config.mode == "linear_probe"
    fresh_norm = config.model.get("head_norm", "fc_norm") == "fresh"
    cfg = result.cfg.replace(freeze_backbone=linear_probe, drop_rate=0.0, fc_drop_rate=0.0, drop_path_rate=0.0,
                             head_norm="fresh" if fresh_norm else result.cfg.head_norm)

    # --- JAX: the converted weights through the project's own training step -------------
    model = build_model(cfg, "classifier", seed=seed)
    assign_params(model, flat_params(result.model))
    parts = split_model(model, trainable_filter(cfg))
    # The project's own step, as `train` assembles it, on one batch of model-space clips.
    config.batch_size = batch
    asm = assemble(config, jax.devices()[:1],
                   num_classes=cfg.num_classes, steps_per_epoch=steps_per_epoch, model_cfg=cfg, model_space_inputs=True)
    schedule, train_step = asm.schedule, asm.train_step
    state = create_train_state(parts, asm.state_shardings, asm.tx)
    jax_start = {**_flat(parts.trainable), **_flat(parts.frozen)}

    # --- PyTorch: the reference model and VideoMAE's recipe, from the same weights --------
    from mmae_jax.convert import torch_reference
    from mmae_jax.convert.torch_recipe import VideoMAERecipe
    torch_model = torch_reference.VisionTransformer(cfg)
    torch_model.load_state_dict({name: torch.from_numpy(np.array(value)) for name, value in
                                 checkpoint.tensors.items() if not name.endswith("pos_embed")}, strict=True)
    probe = ("head.", "fc_norm.") if fresh_norm else ("head.",)
    with torch.no_grad():
        if fresh_norm:   # the probe's new LayerNorm: the same fresh values on both sides
            torch_model.fc_norm.weight.copy_(torch.from_numpy(np.array(jax_start["head_norm.scale"])))
            torch_model.fc_norm.bias.copy_(torch.from_numpy(np.array(jax_start["head_norm.bias"])))
    for name, parameter in torch_model.named_parameters():
        parameter.requires_grad_(not linear_probe or name.startswith(probe))
    start = {name: p.detach().clone() for name, p in torch_model.named_parameters()}
    recipe = VideoMAERecipe(torch_model.train(), optim, depth=cfg.depth, epochs=config.num_epochs,
                            steps_per_epoch=steps_per_epoch, batch_size=batch)

    rng = np.random.default_rng(seed)
    rows = []
    for step in range(steps):
        video = rng.standard_normal((batch, cfg.num_frames, cfg.img_size, cfg.img_size, cfg.in_chans),
                                    dtype=np.float32)
        label = rng.integers(0, cfg.num_classes, batch).astype(np.int32)
        jax_lr = float(schedule(state["step"]))
        state, metrics = train_step(state, dict(video=jnp.asarray(video), label=jnp.asarray(label)))
        torch_loss, torch_norm, torch_lr = recipe.step(step, torch.from_numpy(video.transpose(0, 4, 1, 2, 3).copy()),
                                                       torch.from_numpy(label).long())
        rows.append(StepComparison(step + 1, torch_loss, float(metrics["loss"]), torch_norm,
                                   float(metrics["grad_norm"]), torch_lr, jax_lr))
    jax_params = {**_flat(state["trainable"]), **_flat(state["frozen"])}
    renames = {"fc_norm.": "head_norm."} if fresh_norm else {}
    groups = _compare_groups(recipe.groups, jax_params, start, name_map(result.source), renames)
    return TrainParityReport(result, cfg, switched_off, rows, groups)


def _flat(tree) -> dict[str, np.ndarray]:
    """Parameter name -> numpy array for every leaf of a pure parameter dict."""
    return {name: np.asarray(leaf) for name, leaf in flat_params(tree).items()}


def _compare_groups(groups: list[dict], jax_params: dict[str, np.ndarray], start: dict, mappings,
                    renames: dict[str, str]) -> list[GroupComparison]:
    """Each PyTorch group's tensors, put in JAX layout by the converter's name map, against ours
    (``renames``: target prefixes that sit elsewhere in our model, e.g. the fresh ``head_norm``)."""
    by_source = {m.sources[0]: m for m in mappings if len(m.sources) == 1}
    rows = []
    for group in groups:
        max_abs = max_moved = 0.0
        for name, param in zip(group["names"], group["params"]):
            mapping = by_source[name]
            target = mapping.target
            for old, new in renames.items():
                target = new + target[len(old):] if target.startswith(old) else target
            ours = jax_params[target]
            theirs = apply(mapping, {name: param.detach().numpy()}, ours.shape)
            max_abs = max(max_abs, float(np.abs(theirs - ours).max()))
            max_moved = max(max_moved, float((param.detach() - start[name]).abs().max()))
        rows.append(GroupComparison(group["name"], len(group["names"]), group["lr_scale"], group["weight_decay"],
                                    max_abs, max_moved))
    return rows


def format_steps(rows: list[StepComparison]) -> str:
    """One line per step: both losses and their difference, both gradient norms, both lrs."""
    lines = [f"{'step':>4} {'torch loss':>12} {'jax loss':>12} {'rel diff':>9} {'torch |g|':>11} "
             f"{'jax |g|':>11} {'rel diff':>9} {'torch lr':>11} {'jax lr':>11} {'rel diff':>9}"]
    for row in rows:
        rel = row.relative()
        lines.append(f"{row.step:>4} {row.torch_loss:>12.7f} {row.jax_loss:>12.7f} {rel['loss']:>9.2e} "
                     f"{row.torch_grad_norm:>11.5g} {row.jax_grad_norm:>11.5g} {rel['grad_norm']:>9.2e} "
                     f"{row.torch_lr:>11.4e} {row.jax_lr:>11.4e} {rel['lr']:>9.2e}")
    return "\n".join(lines)


def format_groups(rows: list[GroupComparison]) -> str:
    """One line per PyTorch parameter group: lr scale, weight decay, max abs diff, distance moved."""
    lines = [f"{'group':<20} {'tensors':>7} {'lr scale':>9} {'wd':>6} {'max abs diff':>13} {'max moved':>11} "
             f"{'diff/moved':>10}"]
    lines += [f"{g.group:<20} {g.num_tensors:>7} {g.lr_scale:>9.4g} {g.weight_decay:>6.3g} {g.max_abs:>13.3e} "
              f"{g.max_moved:>11.3e} {g.relative:>10.2e}" for g in rows]
    return "\n".join(lines)
