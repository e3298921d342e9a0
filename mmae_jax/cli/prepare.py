"""``mmae-jax prepare``: build a dataset's TFRecord shards (faces + spectrogram windows)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
    parser.add_argument("--rebuild", action="store_true",
                        help="build again although DATA_DIR holds this dataset (e.g. after clips were added)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tensorflow_datasets as tfds

    from mmae_jax.data_prep import registry
    from mmae_jax.data_prep.clip_builder import ClipDatasetBuilder
    from mmae_jax.config.names import renamed
    from mmae_jax.errors import ConfigError

    if not sys.stderr.isatty():
        tfds.disable_progress_bar()   # TFDS's bars redraw with carriage returns: none in a log file
    args.config = renamed("data.builder_config", args.config)
    manual_dir, extra = args.manual_dir, {}
    if args.name == "videos" and manual_dir and manual_dir.lower().endswith(".csv"):
        manual_dir, extra = None, {"video_list": args.manual_dir}

    def make_builder(data_dir: str):
        return registry.builder_class(args.name)(data_dir=data_dir, config=args.config,
                                                 num_workers=args.workers, **extra)

    builder = make_builder(args.data_dir)
    beam_options = None
    if args.beam_options:
        from mmae_jax.data_prep.beam_build import pipeline_options
        beam_options = pipeline_options(args.beam_options)
    if manual_dir and type(builder).source_dir is ClipDatasetBuilder.source_dir:
        jobs = listed_clips(builder, manual_dir)
        if not args.rebuild:
            refuse_stale_build(builder, jobs, manual_dir)
    elif args.name != "synthetic" and not manual_dir and not extra:
        raise ConfigError(f"prepare {args.name} needs --manual-dir", _layout(builder))
    download_config = tfds.download.DownloadConfig(manual_dir=manual_dir, beam_options=beam_options,
                                                   download_mode=tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
    with build_lock(builder):
        if args.rebuild and Path(builder.data_dir).exists():
            rebuild_beside(builder, make_builder, download_config, args.data_dir)
        else:
            builder.download_and_prepare(download_config=download_config)
    print(f"{args.name}/{builder.builder_config.name} is in {builder.data_dir}")
    return 0


PREPARE_LOCK = ".prepare.lock"


def build_lock(builder):
    """``with build_lock(builder):`` holds ``<dataset>/<config>/.prepare.lock``: a second
    ``prepare`` of the same dataset and config stops with one line instead of racing this one."""
    from mmae_jax.train.workdir import WorkdirLock

    return WorkdirLock(Path(builder.data_dir).parent, name=PREPARE_LOCK, holder="prepare of this dataset",
                       fix="wait for it to end; a build is never shared by two processes")


def rebuild_beside(builder, make_builder, download_config, data_dir: str) -> None:
    """Build ``builder``'s dataset again in a staging folder beside ``DATA_DIR`` and swap it in
    only when the build succeeded: an interrupted or failed rebuild leaves the old version as
    it was (the staging folder is removed)."""
    import shutil
    import time

    target = Path(builder.data_dir)
    staging_root = Path(data_dir) / f".rebuild-{builder.name}-{builder.builder_config.name}"
    shutil.rmtree(staging_root, ignore_errors=True)     # left by a killed rebuild (the lock is ours)
    try:
        staged = make_builder(str(staging_root))
        staged.download_and_prepare(download_config=download_config)
        replaced = target.with_name(f"{target.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
        target.rename(replaced)
        Path(staged.data_dir).rename(target)
        shutil.rmtree(replaced)
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)


def _layout(builder) -> str:
    return " ".join(builder.MANUAL_DOWNLOAD_INSTRUCTIONS.split())


def listed_clips(builder, manual_dir: str) -> list:
    """The ClipJobs ``builder`` finds in ``manual_dir``; an error naming the expected layout when none."""
    from mmae_jax.data_prep.report import BuildReport
    from mmae_jax.errors import InputError, MissingInputError

    root = Path(manual_dir)
    if not root.is_dir():
        raise MissingInputError(f"--manual-dir {root} is not a folder", _layout(builder))
    jobs = builder.list_clips(root, BuildReport(builder.name))
    if not jobs:
        raise InputError(f"--manual-dir {root} holds no {builder.name} clips in the expected layout",
                         _layout(builder))
    return jobs


def refuse_stale_build(builder, jobs: list, manual_dir: str) -> None:
    """InputError when ``builder.data_dir`` holds a build whose clip list differs from the folder's."""
    from mmae_jax.errors import InputError

    if not (Path(builder.data_dir) / "dataset_info.json").is_file():
        return
    metadata = builder.info.metadata or {}
    before = set(metadata.get("listed_clip_ids") or metadata.get("clips", {}).get("clip_id", []))
    now = {job.clip_id for job in jobs}
    new, gone = sorted(now - before), sorted(before - now)
    if new or gone:
        examples = ", ".join((new or gone)[:3])
        raise InputError(f"{builder.data_dir} was built from another clip list than {manual_dir} holds now "
                         f"({len(new)} clips new, {len(gone)} gone; e.g. {examples})",
                         "rerun with --rebuild to build it again from the folder")
