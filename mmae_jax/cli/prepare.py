"""``mmae-jax prepare``: build a dataset's TFRecord shards (faces + spectrogram windows)."""

from __future__ import annotations

import argparse

DATASETS = ("ravdess", "crema_d", "iemocap", "synthetic")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "prepare", help="decode, crop faces and cut audio windows into a TFDS dataset",
        description="Runs a data_prep TFDS builder on all cores; bad input is reported, skipped and "
                    "counted in a summary at the end.")
    parser.add_argument("name", choices=DATASETS)
    parser.add_argument("--manual-dir", help="the raw dataset folder (not needed for synthetic)")
    parser.add_argument("--data-dir", required=True, help="where the TFDS dataset is written")
    parser.add_argument("--config", default=None, help="builder config (default: logmel)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: every core)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tensorflow_datasets as tfds

    from data_prep import registry

    builder = registry.builder_class(args.name)(data_dir=args.data_dir, config=args.config,
                                                num_workers=args.workers)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=args.manual_dir))
    print(f"{args.name}/{builder.builder_config.name} is in {builder.data_dir}")
    return 0
