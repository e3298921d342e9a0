"""``mmae-jax prepare``: build a dataset's TFRecord shards (faces + spectrogram windows)."""

from __future__ import annotations

import argparse

DATASETS = ("ravdess", "crema_d", "iemocap", "synthetic", "videos")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "prepare", help="decode, crop faces and cut audio windows into a TFDS dataset",
        description="Runs a data_prep TFDS builder on all cores; bad input is reported, skipped and "
                    "counted in a summary at the end.")
    parser.add_argument("name", choices=DATASETS)
    parser.add_argument("--manual-dir", help="the raw dataset folder (not needed for synthetic); for videos "
                                             "also a CSV list of video paths")
    parser.add_argument("--data-dir", required=True, help="where the TFDS dataset is written")
    parser.add_argument("--config", default=None, help="builder config (default: logmel)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
    parser.add_argument("--beam-options", default=None,
                        help="run the build as an Apache Beam pipeline with these options, e.g. "
                             "'runner=DirectRunner,direct_num_workers=2,direct_running_mode=multi_processing' "
                             "or 'runner=DataflowRunner,project=...' (needs the [beam] extra)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tensorflow_datasets as tfds

    from data_prep import registry

    manual_dir, extra = args.manual_dir, {}
    if args.name == "videos" and manual_dir and manual_dir.lower().endswith(".csv"):
        manual_dir, extra = None, {"video_list": args.manual_dir}
    builder = registry.builder_class(args.name)(data_dir=args.data_dir, config=args.config,
                                                num_workers=args.workers, **extra)
    beam_options = None
    if args.beam_options:
        from data_prep.beam_build import pipeline_options
        beam_options = pipeline_options(args.beam_options)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir,
                                                                              beam_options=beam_options))
    print(f"{args.name}/{builder.builder_config.name} is in {builder.data_dir}")
    return 0
