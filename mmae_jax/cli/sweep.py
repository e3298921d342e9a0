"""``mmae-jax kfold`` (every fold of a protocol) and ``mmae-jax sweep`` (every strategy)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mmae_jax.cli.runtime import add_distributed_arguments, load_config, start
from mmae_jax.cli.train import add_workdir_arguments, prepare_workdir, require_workdir
from mmae_jax.errors import ConfigError, stopped_line


def register(subparsers) -> None:
    kfold = subparsers.add_parser("kfold", help="train every speaker-independent fold, then summarise")
    add_workdir_arguments(kfold)
    kfold.add_argument("--folds", help="comma-separated fold numbers (default: all of the dataset)")
    add_distributed_arguments(kfold)
    kfold.set_defaults(func=run_kfold, accepts_config=True)

    sweep = subparsers.add_parser("sweep", help="train every fusion strategy (and face/audio only)")
    add_workdir_arguments(sweep)
    sweep.add_argument("--strategies", help="comma-separated (default: the six, face_only, audio_only)")
    sweep.add_argument("--kfold", action="store_true", help="run every fold for each strategy")
    sweep.add_argument("--folds", help="with --kfold: comma-separated fold numbers")
    add_distributed_arguments(sweep)
    sweep.set_defaults(func=run_sweep, accepts_config=True)


def _folds(config, text: str | None) -> list[int]:
    """The folds ``--folds`` names (default: every fold of the dataset; none of a dataset the
    validation of the config refuses)."""
    from mmae_jax.data_prep.protocols import NUM_FOLDS
    count = NUM_FOLDS.get(config.data.dataset, 0)
    if not count:
        return []
    if not text:
        return list(range(count))
    folds = [int(f) for f in text.split(",") if f.strip().isdigit()]
    if len(folds) != len(text.split(",")) or any(f >= count for f in folds):
        raise ConfigError(f"--folds {text}: {config.data.dataset} has folds 0..{count - 1}",
                          "give comma-separated fold numbers from that range")
    repeated = sorted({f for f in folds if folds.count(f) > 1})
    if repeated:
        raise ConfigError(f"--folds {text} names fold {', '.join(map(str, repeated))} more than once",
                          "give each fold once (a fold counted twice skews the mean and std)")
    return folds


def _split_files(workdir: str, config, folds: list[int] | None) -> str:
    """Write the runs' split files to ``workdir/splits`` (process 0); their hash, or "" elsewhere.

    ``folds``: the folds run (k-fold), or None for single runs of the config's protocol.
    """
    import jax

    from mmae_jax.data_prep.protocols import FOLD_PROTOCOLS
    from mmae_jax.data.split_files import write_split_files

    if jax.process_index() != 0:
        return ""
    data = config.data.copy_and_resolve_references()
    if folds is not None and data.protocol not in FOLD_PROTOCOLS:
        data.protocol = "kfold"
    if folds is None and data.protocol in FOLD_PROTOCOLS:
        folds = [data.fold]
    return write_split_files(data, Path(workdir) / "splits", folds)


def _finish(workdir: str, results_by_strategy: dict, splits_sha256: str = "") -> int:
    """Print and write the summary; EXIT_PREEMPTED (SIGTERM) or EXIT_INTERRUPTED (Ctrl-C) when
    a run was stopped or not started."""
    from mmae_jax.train.sweep import markdown_table, summarize, was_stopped, write_summary
    rows = summarize(results_by_strategy)
    path = write_summary(workdir, rows, splits_sha256)
    print(markdown_table(rows, splits_sha256))
    print(f"summary: {path} and {path.with_suffix('.json')}")
    if any(was_stopped(results) for results in results_by_strategy.values()):
        signals = [r["signal"] for results in results_by_strategy.values() for r in results if r.get("signal")]
        line, code = stopped_line(signals[0] if signals else "SIGTERM")
        print(line)
        return code
    return 0


def run_kfold(args: argparse.Namespace) -> int:
    require_workdir(args)
    start(args)
    from mmae_jax.data.integrity import reading_errors
    from mmae_jax.train.sweep import fold_config, run_folds
    config = load_config(args.config_argv)
    folds = _folds(config, args.folds)
    prepare_workdir(args, config, [fold_config(config, fold) for fold in folds])
    with reading_errors(config.data):
        results = run_folds(config, args.workdir, folds, validate=False)
    return _finish(args.workdir, {config.data.strategy: results}, _split_files(args.workdir, config, folds))


def run_sweep(args: argparse.Namespace) -> int:
    require_workdir(args)
    start(args)
    from mmae_jax.config.choices import STRATEGIES
    from mmae_jax.data.integrity import reading_errors
    from mmae_jax.train.loop import train_and_evaluate
    from mmae_jax.train.sweep import NOT_RUN, fold_config, run_folds, was_stopped

    config = load_config(args.config_argv)
    if args.folds and not args.kfold:
        raise ConfigError(f"--folds {args.folds} is used only with --kfold",
                          "add --kfold, or set the fold of single runs with --config.data.fold")
    strategies = args.strategies.split(",") if args.strategies else list(STRATEGIES)
    unknown = sorted(set(strategies) - set(STRATEGIES))
    if unknown:
        raise ConfigError(f"unknown strategies {unknown}", f"choose from {', '.join(STRATEGIES)}")
    folds = _folds(config, args.folds) if args.kfold else None
    strategy_configs = {strategy: config.copy_and_resolve_references() for strategy in strategies}
    for strategy, strategy_config in strategy_configs.items():
        strategy_config.data.strategy = strategy
    prepare_workdir(args, config, [fold_config(c, fold) if args.kfold else c
                                   for c in strategy_configs.values() for fold in (folds or [None])])
    results, stopped = {}, False
    with reading_errors(config.data):
        for strategy, strategy_config in strategy_configs.items():
            strategy_config.data.data_dir = config.data.data_dir      # made absolute by the validation
            workdir = Path(args.workdir) / strategy
            if args.kfold:
                results[strategy] = run_folds(strategy_config, workdir, folds, stopped=stopped, validate=False)
            else:
                results[strategy] = [{"status": NOT_RUN} if stopped else
                                     train_and_evaluate(strategy_config, workdir, validate=False)]
            stopped = was_stopped(results[strategy])
    return _finish(args.workdir, results, _split_files(args.workdir, config, folds))
