"""``mmae-jax splits``: write the train / validation / test membership of a protocol as CSV files.

One CSV per split (and per fold of kfold / hicmae): clip id, label, speaker and a content hash of
the stored example, sorted by clip id, plus SHA256SUMS. The printed hash (sha256 of SHA256SUMS) is
the one sweep and kfold summaries name.

With ``--from-notebook-archive ARCHIVE`` the split is the original notebook's own: every fused
clip of its archive (``RAVDESS_FSLF.zip`` or its unpacked folder: ``{train,val,test}/<Class>/*.mp4``)
is matched to its clip in the ``notebook_mfcc`` build by its face frames, and the files say which
clips its train / val / test folders held (``archive_matches.csv``: which file is which clip).
Train with them by ``--config.data.split_dir=OUT``.
"""

from __future__ import annotations

import argparse

from mmae_jax.cli.arguments import add_command


def register(subparsers) -> None:
    parser = add_command(subparsers, "splits", run, __doc__, accepts_config=True)
    parser.add_argument("--out", required=True, help="folder for the files")
    parser.add_argument("--from-notebook-archive", metavar="ARCHIVE", default=None,
                        help="the notebook's RAVDESS_FSLF.zip (or its unpacked folder): write its split")
    parser.add_argument("--archive-strategy", default="fslf", choices=("fslf", "ffls", "ofos"),
                        help="the fusion the archive's clips show (default: fslf, as RAVDESS_FSLF.zip)")


def run(args: argparse.Namespace) -> int:
    from mmae_jax.cli.runtime import load_config
    from mmae_jax.config.validate import validate_spec
    from mmae_jax.data.split_files import write_split_files
    from mmae_jax.train.validate import validate_paths

    config = load_config(args.config_argv)
    validate_spec(config, command="splits")
    validate_paths(config)
    if args.from_notebook_archive:
        from mmae_jax.data.notebook_archive import write_archive_split_files

        digest, match = write_archive_split_files(config.data, args.from_notebook_archive, args.out,
                                                  args.archive_strategy)
        train, validation = match.count("train"), match.count("validation")
        inside = match.overlap("train", "validation")
        print(f"{config.data.dataset}: the notebook's split from {args.from_notebook_archive}: "
              f"{len(match.clip_of)} files matched; train {train}, validation {validation}, "
              f"test {match.count('test')} clips; {inside} of the {validation} validation clips are training "
              f"clips ({'validation inside training' if inside == validation else 'not all inside training'}); "
              f"{match.overlap('train', 'test')} test clips are training clips")
        print(f"split files in {args.out}, sha256 {digest}; train on them with --config.data.split_dir={args.out}")
        return 0
    digest = write_split_files(config.data, args.out)
    print(f"{config.data.dataset} protocol {config.data.protocol}: split files in {args.out}, sha256 {digest}")
    return 0
