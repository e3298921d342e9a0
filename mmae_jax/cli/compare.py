"""``mmae-jax compare``: PyTorch vs converted JAX outputs of one checkpoint (max abs / rel difference).

Builds the PyTorch model from the checkpoint (mmae_jax.convert.torch_reference for official .pth
files, transformers for Hugging Face folders), converts it in memory, runs both in float32 on the
same random input and prints one row per output.
"""

from __future__ import annotations

import argparse
import sys

from mmae_jax.cli.arguments import add_command, add_source


def register(subparsers) -> None:
    parser = add_command(subparsers, "compare", run, __doc__, accepts_config=True)
    add_source(parser)
    parser.add_argument("--variant", help="default: read from the checkpoint")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--trust-pickle", action="store_true", help="see `mmae-jax convert --help`")
    training = parser.add_argument_group(
        "training parity (--train-steps N with --config)",
        "Train N steps from the checkpoint in PyTorch (VideoMAE's optimiser recipe, "
        "mmae_jax.convert.torch_recipe) and in JAX (the project's train step) on the same random "
        "batches, with the optimiser recipe of --config (e.g. configs/ravdess.py:recipe=videomae); "
        "dropout, drop path and mixup/cutmix are switched off. Exit 1 when a step's relative loss, "
        "gradient-norm or learning-rate difference exceeds --tolerance (or, with --param-tolerance, "
        "a parameter group's difference exceeds that fraction of the distance it moved).")
    training.add_argument("--train-steps", type=int, default=0, metavar="N", help="0: compare outputs only")
    training.add_argument("--tolerance", type=float, default=1e-4,
                          help="largest relative difference of a step's loss, gradient norm and lr")
    training.add_argument("--param-tolerance", type=float, default=0.0,
                          help="largest parameter difference of a group, relative to how far it moved "
                               "(0: the groups are reported, not judged; float32 rounding of small "
                               "updates reaches a few percent)")
    training.add_argument("--steps-per-epoch", type=int, default=1,
                          help="sizes the schedule: config.num_epochs epochs of this many steps")
    training.add_argument("--frames", type=int, help="clip length (default: the checkpoint's, else 16)")
    training.add_argument("--img-size", type=int, help="frame size (default: the checkpoint's, else 224)")


def run(args: argparse.Namespace) -> int:
    from mmae_jax.convert.parity import compare_checkpoint, format_table
    from mmae_jax.convert.torch_loading import CheckpointError, load_checkpoint, require_torch

    if args.train_steps or args.config_argv:
        return run_training(args)
    try:
        require_torch().set_num_threads(args.threads)
        checkpoint = load_checkpoint(args.source, trust_pickle=args.trust_pickle)
        result, rows = compare_checkpoint(checkpoint, batch=args.batch, seed=args.seed, variant=args.variant)
    except (CheckpointError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.source}: {result.family}, variant {result.cfg.variant}, input "
          f"[{args.batch}, {result.cfg.in_chans}, {result.cfg.num_frames}, {result.cfg.img_size}, "
          f"{result.cfg.img_size}], float32")
    print(format_table(rows))
    return 0


def run_training(args: argparse.Namespace) -> int:
    """``--train-steps``: per-step table, per-group table, exit 1 past the tolerances."""
    from mmae_jax.cli.runtime import load_config
    from mmae_jax.convert import train_parity
    from mmae_jax.convert.torch_loading import load_checkpoint, require_torch
    from mmae_jax.errors import ConfigError

    unknown = [arg for arg in args.config_argv if arg.startswith("-") and not arg.startswith("--config")]
    if unknown:
        raise ConfigError(f"unrecognized arguments: {' '.join(unknown)}", "see mmae-jax compare --help")
    if not (args.train_steps and args.config_argv):
        raise ConfigError("training parity needs both --train-steps N and --config FILE[:ARGS]",
                          "e.g. --train-steps 20 --config configs/ravdess.py:recipe=videomae")
    config = load_config(args.config_argv)
    require_torch().set_num_threads(args.threads)
    checkpoint = load_checkpoint(args.source, trust_pickle=args.trust_pickle)
    report = train_parity.run_training_parity(
        checkpoint, config, steps=args.train_steps, batch=args.batch, seed=args.seed, variant=args.variant,
        num_frames=args.frames, img_size=args.img_size, steps_per_epoch=args.steps_per_epoch)
    cfg = report.model_cfg
    print(f"{args.source}: {report.conversion.family}, variant {cfg.variant}, mode {config.mode}, "
          f"{args.train_steps} steps of batch [{args.batch}, {cfg.in_chans}, {cfg.num_frames}, {cfg.img_size}, "
          f"{cfg.img_size}], float32; schedule {config.num_epochs} epochs x {args.steps_per_epoch} steps")
    dtype = config.model.get("dtype", "float32")
    print("switched off (randomness the frameworks cannot share): "
          + (", ".join(report.switched_off) or "nothing was on") + "; compute in float32"
          + (f" (the config's model.dtype {dtype} is not used)" if dtype != "float32" else ""))
    print(train_parity.format_steps(report.steps))
    print(f"\nparameter groups after step {args.train_steps} (PyTorch's groups, VideoMAE's optim_factory):")
    print(train_parity.format_groups(report.groups))
    failures = report.failures(args.tolerance, args.param_tolerance)
    for failure in failures:
        print(f"MISMATCH {failure}")
    groups = f"{args.param_tolerance:g}" if args.param_tolerance > 0 else "not judged"
    print(f"{'FAIL' if failures else 'OK'}: tolerance {args.tolerance:g} (steps), {groups} (parameter groups)")
    return 1 if failures else 0
