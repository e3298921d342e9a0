"""``mmae-jax kfold`` (every fold of a protocol) and ``mmae-jax sweep`` (every strategy)."""

from __future__ import annotations

import argparse

from mmae_jax.cli.runtime import add_distributed_arguments, load_config, start


def register(subparsers) -> None:
    kfold = subparsers.add_parser("kfold", help="train every speaker-independent fold, then summarise")
    kfold.add_argument("--workdir", required=True)
    kfold.add_argument("--folds", help="comma-separated fold numbers (default: all of the dataset)")
    add_distributed_arguments(kfold)
    kfold.set_defaults(func=run_kfold, accepts_config=True)

    sweep = subparsers.add_parser("sweep", help="train every fusion strategy (and face/audio only)")
    sweep.add_argument("--workdir", required=True)
    sweep.add_argument("--strategies", help="comma-separated (default: the six, face_only, audio_only)")
    sweep.add_argument("--kfold", action="store_true", help="run every fold for each strategy")
    sweep.add_argument("--folds", help="with --kfold: comma-separated fold numbers")
    add_distributed_arguments(sweep)
    sweep.set_defaults(func=run_sweep, accepts_config=True)


def _folds(config, text: str | None) -> list[int]:
    from data_prep.protocols import num_folds
    return [int(f) for f in text.split(",")] if text else list(range(num_folds(config.data.dataset)))


def _finish(workdir: str, results_by_strategy: dict) -> int:
    from mmae_jax.train.sweep import markdown_table, summarize, write_summary
    rows = summarize(results_by_strategy)
    path = write_summary(workdir, rows)
    print(markdown_table(rows))
    print(f"summary: {path} and {path.with_suffix('.json')}")
    return 0


def run_kfold(args: argparse.Namespace) -> int:
    start(args)
    from mmae_jax.train.sweep import run_folds
    config = load_config(args.config_argv)
    results = run_folds(config, args.workdir, _folds(config, args.folds))
    return _finish(args.workdir, {config.data.strategy: results})


def run_sweep(args: argparse.Namespace) -> int:
    start(args)
    from pathlib import Path

    from mmae_jax.data.fusion import STRATEGIES
    from mmae_jax.train.loop import train_and_evaluate
    from mmae_jax.train.sweep import run_folds

    config = load_config(args.config_argv)
    strategies = args.strategies.split(",") if args.strategies else list(STRATEGIES)
    unknown = sorted(set(strategies) - set(STRATEGIES))
    if unknown:
        raise SystemExit(f"unknown strategies {unknown}; choose from {list(STRATEGIES)}")
    results = {}
    for strategy in strategies:
        strategy_config = config.copy_and_resolve_references()
        strategy_config.data.strategy = strategy
        workdir = Path(args.workdir) / strategy
        results[strategy] = (run_folds(strategy_config, workdir, _folds(config, args.folds)) if args.kfold
                             else [train_and_evaluate(strategy_config, workdir)])
    return _finish(args.workdir, results)
