"""``mmae-jax show-fusion``: one stored clip under every fusion strategy, as one picture.

One row per strategy (like Figure 2 of the paper), one column per frame of the sequence.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "show-fusion", help="draw one stored clip under every fusion strategy",
        description="Reads one example of a built dataset and draws the sequence each fusion "
                    "strategy makes of it, one row per strategy.")
    parser.add_argument("--data-dir", required=True, help="TFDS data directory of the built dataset")
    parser.add_argument("--dataset", required=True, help="dataset name, e.g. ravdess or synthetic")
    parser.add_argument("--config", default="", help="builder config (default: the dataset's)")
    parser.add_argument("--clip", default="0", help="global example index or clip id")
    parser.add_argument("--out", default="fusion.png", help="PNG file to write")
    parser.add_argument("--frames", type=int, default=0,
                        help="frames per sequence (T); default: all stored frames")
    parser.add_argument("--size", type=int, default=112, help="pixels per frame side in the picture")
    parser.add_argument("--render", default="viridis", help="spectrogram colours: viridis, gray or matshow (the original matplotlib picture)")
    parser.add_argument("--sfas-mode", default="mean", help="mean, clip or wrap")
    parser.add_argument("--seed", type=int, default=0, help="seed of the rfas order")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from mmae_jax.config.choices import STRATEGIES
    from mmae_jax.config.defaults import default_data_config
    from mmae_jax.data.source import read_stored_example
    from mmae_jax.data.transform import prepare_clip
    from mmae_jax.errors import ConfigError, InputError

    check_arguments(args)
    cfg = default_data_config()
    cfg.update(data_dir=args.data_dir, dataset=args.dataset, builder_config=args.config,
               image_size=args.size, spectrogram_render=args.render, sfas_mode=args.sfas_mode)
    try:
        example = read_stored_example(cfg, args.clip)
    except (KeyError, IndexError) as error:
        raise InputError(f"--clip {args.clip}: {str(error).strip(chr(34))}",
                         "give an example index or a clip id of the dataset") from error
    cfg.num_frames = args.frames or len(example["faces"])
    if cfg.num_frames > len(example["faces"]):
        raise ConfigError(f"--frames {args.frames}: the stored clips hold {len(example['faces'])} frames",
                          f"give at most {len(example['faces'])}")
    if example["spectrogram_half"] is not None:   # a 'spanning' layout build: read it with the original's timing
        cfg.frame_sampling = "notebook_timing"
    rows = {strategy: prepare_clip(example["faces"], example["spectrogram"], cfg, strategy=strategy,
                                   seed=args.seed, spectrogram_half=example["spectrogram_half"])
            for strategy in STRATEGIES}
    figure, axes = plt.subplots(len(rows), cfg.num_frames, squeeze=False,
                                figsize=(cfg.num_frames * 0.9, len(rows) * 0.95))
    for axis_row, (strategy, video) in zip(axes, rows.items()):
        for axis, frame in zip(axis_row, video):
            axis.imshow(frame)                                    # uint8 pixels
            axis.set_xticks([])
            axis.set_yticks([])
        axis_row[0].set_ylabel(strategy.upper().replace("_", " "), rotation=0, ha="right",
                               va="center", fontsize=9)
    figure.suptitle(f"{args.dataset} clip {example['clip_id']} (#{example['index']}), "
                    f"label {example['label_name']}, speaker {example['speaker']}", fontsize=10)
    figure.subplots_adjust(left=0.09, right=0.995, top=0.94, bottom=0.01, wspace=0.04,
                           hspace=0.06)
    figure.savefig(args.out, dpi=110, bbox_inches="tight")
    plt.close(figure)
    print(f"wrote {args.out}: {len(rows)} strategies x {cfg.num_frames} frames of clip "
          f"{example['clip_id']}")
    return 0


def check_arguments(args: argparse.Namespace) -> None:
    """ConfigError for a value no picture can be drawn with (before any data is read)."""
    from pathlib import Path

    from mmae_jax.config.choices import RENDER_MODES, SFAS_MODES
    from mmae_jax.config.names import renamed
    from mmae_jax.errors import ConfigError

    args.render = renamed("data.spectrogram_render", args.render)
    args.config = renamed("data.builder_config", args.config)
    if args.render not in RENDER_MODES:
        raise ConfigError(f"--render {args.render} is not known", f"choose one of {', '.join(RENDER_MODES)}")
    if args.sfas_mode not in SFAS_MODES:
        raise ConfigError(f"--sfas-mode {args.sfas_mode} is not known", f"choose one of {', '.join(SFAS_MODES)}")
    if args.size < 16:
        raise ConfigError(f"--size {args.size} is too small", "give 16 pixels or more")
    if args.frames < 0 or args.frames % 2:
        raise ConfigError(f"--frames {args.frames}: the strategies need an even number of frames",
                          "give an even number, or 0 for all stored frames")
    if not Path(args.out).absolute().parent.is_dir():
        raise ConfigError(f"--out {args.out}: the folder {Path(args.out).parent} does not exist", "create it first")
