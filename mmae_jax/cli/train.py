"""``mmae-jax train``, ``mmae-jax pretrain`` and ``mmae-jax evaluate``.

The config's ``task`` field says what a config trains; ``train`` runs classification configs
and ``pretrain`` pre-training configs, and each refuses the other's in one line.
"""

from __future__ import annotations

import argparse
import json

from mmae_jax.cli.runtime import add_distributed_arguments, load_config, start
from mmae_jax.errors import ConfigError, stopped_line

TRAIN_EPILOG = """examples:
  mmae-jax train --config demo --workdir workdirs/demo
  mmae-jax train --config ravdess:strategy=ffls,protocol=kfold,fold=2 --workdir runs/r2 \\
      --config.data.data_dir=/data/tfds --config.batch_size=32
  mmae-jax train --config my_config.py --print-config
Running the same command again resumes from the workdir's latest checkpoint.
The config must have task=classification (a pre-training config is run by `mmae-jax pretrain`)."""

EVALUATE_EPILOG = """config overrides:
  --config.KEY=VALUE    change one field of the saved config for this evaluation
                        (a misspelled KEY is an error)
examples:
  mmae-jax evaluate --workdir workdirs/demo/run --model best
  mmae-jax evaluate --workdir runs/r2 --model 1200 --split validation
  mmae-jax evaluate --workdir runs/r2 --config.data.data_dir=/other/tfds --config.data.fold=3 --name fold3"""


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="fine-tune or linear-probe a classifier (config.task=classification)",
                                  epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_workdir_arguments(train)
    add_distributed_arguments(train)
    train.set_defaults(func=run_train, accepts_config=True)

    pretrain = subparsers.add_parser("pretrain", help="MAE pre-training on fused sequences, labels unused "
                                                       "(config.task=pretraining)",
                                     epilog="example:\n  mmae-jax pretrain --config pretrain_demo "
                                            "--workdir workdirs/pretrain_demo\n"
                                            "The config must have task=pretraining (configs/pretrain_*.py); "
                                            "a classification config is run by `mmae-jax train`.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_workdir_arguments(pretrain)
    add_distributed_arguments(pretrain)
    pretrain.set_defaults(func=run_pretrain, accepts_config=True)

    evaluate = subparsers.add_parser(
        "evaluate", help="evaluate a training workdir's model on a split",
        description="Restores the parameters alone (no optimiser) and evaluates them under the workdir's "
                    "saved config.json, which is never rewritten; --config.KEY=VALUE changes a field for this "
                    "evaluation only (another data_dir, fold or dataset). Results: "
                    "WORKDIR/evaluations/NAME/{results.json,config.json,confusion.png,confusion.pdf}.",
        epilog=EVALUATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluate.add_argument("--workdir", required=True)
    evaluate.add_argument("--split", default="test", choices=("train", "validation", "test"))
    evaluate.add_argument("--model", default="final", metavar="best|final|STEP",
                          help="best_model/, final_model/ or the train checkpoint of step STEP")
    evaluate.add_argument("--name", default="",
                          help="folder under WORKDIR/evaluations (default: MODEL_SPLIT, plus a hash of the overrides)")
    add_distributed_arguments(evaluate)
    evaluate.set_defaults(func=run_evaluate, accepts_config="overrides")


def add_workdir_arguments(parser: argparse.ArgumentParser) -> None:
    """``--workdir`` (required to run; ``--print-config`` needs none, ``require_workdir``) and
    ``--fresh`` (move an old run aside instead of resuming it)."""
    parser.add_argument("--workdir", help="where checkpoints, logs and results go; the same command again "
                                          "resumes there (required, except with --print-config)")
    parser.add_argument("--fresh", action="store_true",
                        help="start a new run: rename an existing WORKDIR to WORKDIR.old-<time> first")


def require_workdir(args: argparse.Namespace) -> None:
    """ConfigError when the command that runs ``args`` has no ``--workdir``."""
    if not args.workdir:
        raise ConfigError(f"mmae-jax {args.command} needs --workdir: the folder for the run's checkpoints, logs "
                          f"and results", f"add e.g. --workdir workdirs/NAME; only --print-config runs without it")


def prepare_workdir(args: argparse.Namespace, config, runs=()) -> None:
    """Validate ``config``, the run spec of ``args.command``, and the specs of the ``runs`` it
    derives (a sweep's strategies and folds) before anything is touched; then, with ``--fresh``,
    move the old workdir aside (process 0; only a folder that holds a run) and say where it went."""
    import jax

    from mmae_jax.config.validate import validate_spec
    from mmae_jax.train.validate import validate_experiment
    from mmae_jax.train.workdir import check_workdir_path, move_aside
    check_workdir_path(args.workdir)
    validate_experiment(config, command=args.command)
    for run in runs:
        validate_spec(run, command=args.command)
    if args.fresh and jax.process_index() == 0:
        moved = move_aside(args.workdir)
        if moved is not None:
            print(f"moved the old run in {args.workdir} to {moved}")


def _run(args: argparse.Namespace, report) -> int:
    """Start-up, the run of the command's task (ConfigError for a config of another task), then
    ``report(results)``; EXIT_PREEMPTED after SIGTERM, EXIT_INTERRUPTED after Ctrl-C."""
    from mmae_jax.data.integrity import reading_errors
    from mmae_jax.train.loop import train_and_evaluate

    require_workdir(args)
    start(args)
    config = load_config(args.config_argv)
    prepare_workdir(args, config)
    with reading_errors(config.data):
        results = train_and_evaluate(config, args.workdir, validate=False)
    if results.get("status") == "preempted":
        line, code = stopped_line(results.get("signal", "SIGTERM"), results["step"])
        print(line)
        return code
    report(results)
    return 0


def run_train(args: argparse.Namespace) -> int:
    return _run(args, lambda results: print_results(results, args.workdir))


def run_pretrain(args: argparse.Namespace) -> int:
    def report(results: dict) -> None:
        for entry in results["reconstruction_history"]:
            print(f"step {entry['step']:>6}  {entry['split']} reconstruction loss {entry['loss']:.4f}")
        print(f"\nencoder for fine-tuning: init={results['final_model']}; pictures: "
              f"{args.workdir}/reconstruction_step*.png")

    return _run(args, report)


def run_evaluate(args: argparse.Namespace) -> int:
    start(args)
    from mmae_jax.train.evaluate import evaluate_workdir
    report = evaluate_workdir(args.workdir, args.split, model=args.model, overrides=args.config_argv,
                              name=args.name)
    print(json.dumps({k: report[k] for k in ("model", "step", "split", "war", "uar", "per_class_recall",
                                             "num_examples")}, indent=2))
    print(f"results: {report['output_dir']}/results.json")
    return 0


def print_results(results: dict, workdir: str) -> None:
    """A small table of the last-epoch and best-validation test numbers."""
    rows = [("test, last epoch", results["test"])]
    if results.get("test_at_best_validation"):
        best = results["test_at_best_validation"]
        rows.append((f"test, best validation (epoch {best['epoch']})", best["test"]))
    print(f"\n{results['dataset']} / {results['strategy']} / {results['protocol']} fold {results['fold']}")
    print(f"{'':<40} {'WAR %':>7} {'UAR %':>7}")
    for name, report in rows:
        print(f"{name:<40} {report['war']:>7.2f} {report['uar']:>7.2f}")
    from mmae_jax.train.plots import reported_confusions

    plots = [f"{workdir}/confusion_{key}.png" for key, _, _ in reported_confusions(results)]
    print(f"\nresults: {workdir}/results.json; plots: {', '.join(plots)}, {workdir}/training_curves.png; "
          f"TensorBoard: {workdir}/tensorboard")
