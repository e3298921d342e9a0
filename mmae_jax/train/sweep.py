"""Runs over folds and strategies, and their summary tables (mean ± std of WAR and UAR)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import jax
import ml_collections
import numpy as np

from mmae_jax.train.loop import train_and_evaluate


PREEMPTED, NOT_RUN = "preempted", "not_run"


def run_folds(config: ml_collections.ConfigDict, workdir: str | Path, folds: Sequence[int], *,
              stopped: bool = False) -> list[dict]:
    """Train and evaluate every fold of the k-fold protocol into ``workdir/fold_<k>``.

    One entry per fold: its results, or ``{"status": "preempted" | "not_run", "fold": k}``.
    After a SIGTERM (or with ``stopped``) no further fold is started; running the same
    folds again resumes the stopped one and reuses the finished ones.
    """
    results = []
    for fold in folds:
        if stopped:
            results.append({"status": NOT_RUN, "fold": fold})
            continue
        fold_config = config.copy_and_resolve_references()
        fold_config.data.protocol = "kfold"
        fold_config.data.fold = fold
        result = train_and_evaluate(fold_config, Path(workdir) / f"fold_{fold}")
        stopped = result.get("status") == PREEMPTED
        results.append(dict(result, fold=fold) if stopped else result)
    return results


def was_stopped(results: Sequence[dict]) -> bool:
    """True when a run in ``results`` was preempted or not started."""
    return any(r.get("status") in (PREEMPTED, NOT_RUN) for r in results)


def _mean_std(values: list[float]) -> dict | None:
    if not values:
        return None
    array = np.asarray(values, np.float64)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if len(array) > 1 else 0.0}


def summarize(results_by_strategy: dict[str, list[dict]]) -> list[dict]:
    """One row per strategy: runs, WAR and UAR (mean, std) on test at the last epoch and at
    the best-validation epoch (absent when the protocol has no validation split).

    ``unfinished`` lists the runs without results (``"fold 3"``, or ``"run"`` outside k-fold);
    ``expected`` counts all runs asked for.
    """
    rows = []
    for strategy, results in results_by_strategy.items():
        finished = [r for r in results if "test" in r]
        unfinished = [f"fold {r['fold']}" if "fold" in r and r.get("status") else "run"
                      for r in results if "test" not in r]
        row = {"strategy": strategy, "runs": len(finished), "expected": len(results), "unfinished": unfinished,
               "war": _mean_std([r["test"]["war"] for r in finished]),
               "uar": _mean_std([r["test"]["uar"] for r in finished])}
        best = [r["test_at_best_validation"]["test"] for r in finished if r.get("test_at_best_validation")]
        if best:
            row["best_validation_war"] = _mean_std([b["war"] for b in best])
            row["best_validation_uar"] = _mean_std([b["uar"] for b in best])
        rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    def cell(stat: dict | None) -> str:
        return "-" if stat is None else f"{stat['mean']:.2f} ± {stat['std']:.2f}"

    lines = ["| strategy | runs | UAR % (last epoch) | WAR % (last epoch) | UAR % (best val) | WAR % (best val) |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        runs = str(row["runs"])
        if row.get("unfinished"):
            runs = f"{row['runs']} of {row['expected']} (unfinished: {', '.join(row['unfinished'])})"
        lines.append(f"| {row['strategy']} | {runs} | {cell(row['uar'])} | {cell(row['war'])} | "
                     f"{cell(row.get('best_validation_uar'))} | {cell(row.get('best_validation_war'))} |")
    return "\n".join(lines) + "\n"


def write_summary(workdir: str | Path, rows: list[dict]) -> Path:
    """``summary.md`` and ``summary.json`` in ``workdir`` (process 0 only); returns the .md path."""
    path = Path(workdir) / "summary.md"
    if jax.process_index() == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(markdown_table(rows))
        (Path(workdir) / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    return path
