"""``mmae-jax model-info``: print parameters, tokens and FLOPs of a VideoMAE variant.

Counts are computed from the model's shapes; no weights are allocated. FLOPs are XLA's count of the
forward pass, a multiply-add counted as two (GFLOPs = 2 x GMACs; papers that quote GMACs as 'FLOPs'
give half this number). With --checkpoint, the counts are those of that model: its config replaces
--variant, --num-classes, --frames, --size and --paper-head.
"""

from __future__ import annotations

import argparse

from mmae_jax.cli.arguments import add_checkpoint, add_command, checkpoint_of, model_of


def register(subparsers) -> None:
    parser = add_command(subparsers, "model-info", run, __doc__)
    add_checkpoint(parser, required=False)
    parser.add_argument("--variant", default="base", help="tiny, small, base, large or huge")
    parser.add_argument("--num-classes", type=int, default=7)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--linear-probe", action="store_true", help="count only the head as trainable")
    parser.add_argument("--paper-head", action="store_true",
                        help="the original notebook's head: a fresh LayerNorm trained with the head "
                             "(model.head_norm=fresh)")


def run(args: argparse.Namespace) -> int:
    from mmae_jax.model.config import VideoMAEConfig
    from mmae_jax.model.info import model_info

    if args.checkpoint:
        cfg, _, _ = checkpoint_of(args).read_config()
        if args.linear_probe:
            cfg = cfg.replace(freeze_backbone=True)
    else:
        if model_of(args):
            from mmae_jax.errors import ConfigError
            raise ConfigError(f"--model {model_of(args)} picks a model of the --checkpoint run folder, and no "
                              f"--checkpoint is given", "add --checkpoint RUN_FOLDER, or drop --model")
        cfg = VideoMAEConfig.from_variant(args.variant, num_classes=args.num_classes,
                                          num_frames=args.frames, img_size=args.size,
                                          freeze_backbone=args.linear_probe,
                                          head_norm="fresh" if args.paper_head else "fc_norm")
    info = model_info(cfg)
    t, h, w, c = info.input_shape
    gflops = info.forward_flops / 1e9
    rows = [
        ("variant", info.variant),
        ("input (T, H, W, C)", f"{t} x {h} x {w} x {c}"),
        ("classes", f"{info.num_classes}"),
        ("parameters", f"{info.parameters:,}"),
        ("trainable parameters", f"{info.trainable_parameters:,}"),
        ("tokens per clip", f"{info.tokens:,}"),
        ("forward GFLOPs per clip", f"{gflops:,.{1 if gflops >= 1 else 4}f} (2 x MACs)"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0
