"""Runs over folds and strategies, and their summary tables (mean ± std of WAR and UAR, with
the published numbers beside them when the dataset and protocol are the publication's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import jax
import ml_collections
import numpy as np

from mmae_jax.data_prep.protocols import FOLD_PROTOCOLS
from mmae_jax.train.loop import train_and_evaluate

# The paper's Tables I-III (UAR, WAR in %; None where the paper gives none), measured under
# the notebook's protocol. Strategies are named as in mmae_jax.data.fusion.
PAPER_RESULTS = {
    "ravdess": {"face_only": (None, 74.13), "audio_only": (None, 80.55), "rfas": (75.97, 75.44),
                "sfas": (75.79, 76.94), "ofos": (77.78, 78.61), "cfas": (80.65, 81.39),
                "ffls": (82.27, 83.56), "fslf": (83.23, 83.61)},
    "crema_d": {"face_only": (None, 77.83), "audio_only": (None, 78.45), "rfas": (74.62, 74.90),
                "sfas": (75.73, 75.48), "ofos": (76.88, 76.54), "cfas": (78.24, 78.16),
                "ffls": (78.59, 78.85), "fslf": (79.12, 79.36)},
    "iemocap": {"face_only": (None, 56.13), "audio_only": (None, 58.69), "rfas": (58.62, 59.98),
                "sfas": (60.39, 60.17), "ofos": (61.87, 61.12), "cfas": (61.98, 62.25),
                "ffls": (62.92, 63.43), "fslf": (63.21, 63.73)},
}
PAPER_PROTOCOL = "notebook"
# The best published audio-visual systems under HiCMAE's speaker-independent folds (UAR, WAR %).
HICMAE_PROTOCOL_RESULTS = {
    "ravdess": {"HiCMAE-B": (87.96, 87.99), "AVF-MAE++": (87.44, 87.57)},
    "crema_d": {"HiCMAE-B": (84.91, 84.89), "AVF-MAE++": (86.02, 85.95)},
    "iemocap": {"HiCMAE-B": (68.21, 68.36), "AVF-MAE++": (72.71, 73.83)},
}


PREEMPTED, NOT_RUN = "preempted", "not_run"


def fold_config(config: ml_collections.ConfigDict, fold: int) -> ml_collections.ConfigDict:
    """The run spec of ``fold``: of the config's fold protocol (kfold, hicmae), or of ``kfold``
    when the config's protocol has no folds."""
    fold_config = config.copy_and_resolve_references()
    if fold_config.data.protocol not in FOLD_PROTOCOLS:
        fold_config.data.protocol = "kfold"
    fold_config.data.fold = fold
    return fold_config


def run_folds(config: ml_collections.ConfigDict, workdir: str | Path, folds: Sequence[int], *,
              stopped: bool = False, validate: bool = True) -> list[dict]:
    """Train and evaluate every fold (``fold_config``) into ``workdir/fold_<k>``.

    One entry per fold: its results, or ``{"status": "preempted" | "not_run", "fold": k}``.
    After a SIGTERM (or with ``stopped``) no further fold is started; running the same
    folds again resumes the stopped one and reuses the finished ones. ``validate``: check each
    fold's run spec before its run (False when the command has checked them all at its entry).
    """
    results = []
    for fold in folds:
        if stopped:
            results.append({"status": NOT_RUN, "fold": fold})
            continue
        result = train_and_evaluate(fold_config(config, fold), Path(workdir) / f"fold_{fold}", validate=validate)
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


def paper_result(dataset: str, protocol: str, strategy: str) -> dict | None:
    """``{"uar": ..., "war": ...}`` of the paper for this run, or None when the run is not
    the paper's experiment (another dataset or protocol)."""
    if protocol != PAPER_PROTOCOL or strategy not in PAPER_RESULTS.get(dataset, {}):
        return None
    uar, war = PAPER_RESULTS[dataset][strategy]
    return {"uar": uar, "war": war}


def summarize(results_by_strategy: dict[str, list[dict]]) -> list[dict]:
    """One row per strategy: runs, WAR and UAR (mean, std) on test at the last epoch and at
    the best-validation epoch (absent when the protocol has no validation split), and the
    paper's published numbers (``published``) when the runs' dataset and protocol are the paper's.

    ``unfinished`` lists the runs without results (``"fold 3"``, or ``"run"`` outside k-fold);
    ``expected`` counts all runs asked for; ``folds`` names the data of the finished runs
    (``"kfold 0, 2"``, or the protocol alone when it has no folds).
    """
    rows = []
    for strategy, results in results_by_strategy.items():
        finished = [r for r in results if "test" in r]
        unfinished = [f"fold {r['fold']}" if "fold" in r and r.get("status") else "run"
                      for r in results if "test" not in r]
        row = {"strategy": strategy, "runs": len(finished), "expected": len(results), "unfinished": unfinished,
               "war": _mean_std([r["test"]["war"] for r in finished]),
               "uar": _mean_std([r["test"]["uar"] for r in finished]), "folds": _folds_run(finished)}
        best = [r["test_at_best_validation"]["test"] for r in finished if r.get("test_at_best_validation")]
        if best:
            row["best_validation_war"] = _mean_std([b["war"] for b in best])
            row["best_validation_uar"] = _mean_std([b["uar"] for b in best])
        runs = {(r.get("dataset"), r.get("protocol")) for r in finished}
        if len(runs) == 1:
            dataset, protocol = runs.pop()
            row.update(dataset=dataset, protocol=protocol)
            reference = paper_result(dataset, protocol, strategy)
            if reference:
                row["published"] = reference
        rows.append(row)
    return rows


def _folds_run(finished: list[dict]) -> str:
    """``"kfold 0, 2"``: the protocols of ``finished`` and, for fold protocols, the folds."""
    parts = []
    for protocol in sorted({str(r.get("protocol", "-")) for r in finished}):
        folds = sorted({r["fold"] for r in finished if r.get("protocol", "-") == protocol and "fold" in r})
        parts.append(f"{protocol} {', '.join(map(str, folds))}" if protocol in FOLD_PROTOCOLS and folds
                     else protocol)
    return "; ".join(parts) or "-"


def markdown_table(rows: list[dict], splits_sha256: str = "") -> str:
    """The summary table; a paper column when some row has the paper's numbers, a line with
    the best published results under the hicmae protocol, and the split files' hash."""
    def cell(stat: dict | None) -> str:
        return "-" if stat is None else f"{stat['mean']:.2f} ± {stat['std']:.2f}"

    def published(row: dict) -> str:
        paper = row.get("published")
        if not paper:
            return "-"
        return " / ".join("-" if value is None else f"{value:.2f}" for value in (paper["uar"], paper["war"]))

    with_paper = any("published" in row for row in rows)
    lines = ["| strategy | data | runs | UAR % (last epoch) | WAR % (last epoch) | UAR % (best val) "
             "| WAR % (best val) |"
             + (" paper UAR / WAR % |" if with_paper else ""),
             "|---|---|---|---|---|---|---|" + ("---|" if with_paper else "")]
    for row in rows:
        runs = str(row["runs"])
        if row.get("unfinished"):
            runs = f"{row['runs']} of {row['expected']} (unfinished: {', '.join(row['unfinished'])})"
        lines.append(f"| {row['strategy']} | {row.get('folds', '-')} | {runs} | {cell(row['uar'])} | "
                     f"{cell(row['war'])} | "
                     f"{cell(row.get('best_validation_uar'))} | {cell(row.get('best_validation_war'))} |"
                     + (f" {published(row)} |" if with_paper else ""))
    hicmae = {row.get("dataset") for row in rows if row.get("protocol") == "hicmae"}
    for dataset in sorted(d for d in hicmae if d in HICMAE_PROTOCOL_RESULTS):
        systems = ", ".join(f"{name} {uar:.2f} / {war:.2f}"
                            for name, (uar, war) in HICMAE_PROTOCOL_RESULTS[dataset].items())
        lines.append(f"\nPublished on {dataset} under these folds (UAR / WAR %): {systems}.")
    if splits_sha256:
        lines.append(f"\nSplit files (`mmae-jax splits`, written to splits/): sha256 {splits_sha256}")
    return "\n".join(lines) + "\n"


def write_summary(workdir: str | Path, rows: list[dict], splits_sha256: str = "") -> Path:
    """``summary.md`` and ``summary.json`` in ``workdir`` (process 0 only); returns the .md path.
    ``splits_sha256``, the hash of the split files, is named in both."""
    path = Path(workdir) / "summary.md"
    if jax.process_index() == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(markdown_table(rows, splits_sha256))
        stored = [dict(row, splits_sha256=splits_sha256) if splits_sha256 else row for row in rows]
        (Path(workdir) / "summary.json").write_text(json.dumps(stored, indent=2) + "\n")
    return path
