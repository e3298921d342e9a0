"""Summary tables of k-fold runs and strategy sweeps."""

import json

import pytest

from mmae_jax.train.sweep import markdown_table, summarize, write_summary


def result(war, uar, best=None):
    out = {"test": {"war": war, "uar": uar}}
    if best is not None:
        out["test_at_best_validation"] = {"test": {"war": best[0], "uar": best[1]}}
    return out


def test_summary_gives_mean_and_sample_std_per_strategy(tmp_path):
    rows = summarize({"fslf": [result(80.0, 70.0, (82.0, 72.0)), result(90.0, 74.0, (84.0, 76.0))],
                      "face_only": [result(50.0, 40.0)]})
    fslf, face = rows
    assert fslf["runs"] == 2
    assert fslf["war"]["mean"] == pytest.approx(85.0) and fslf["war"]["std"] == pytest.approx(50 ** 0.5)
    assert fslf["best_validation_uar"]["mean"] == pytest.approx(74.0)
    assert face["uar"] == {"mean": 40.0, "std": 0.0} and "best_validation_war" not in face
    table = markdown_table(rows)
    assert "| fslf | - | 2 | 72.00 ± 2.83 | 85.00 ± 7.07 | 74.00 ± 2.83 | 83.00 ± 1.41 |" in table
    assert "| face_only | - | 1 | 40.00 ± 0.00 | 50.00 ± 0.00 | - | - |" in table
    write_summary(tmp_path, rows)
    assert json.loads((tmp_path / "summary.json").read_text())[0]["strategy"] == "fslf"
    assert (tmp_path / "summary.md").read_text() == table


def test_config_overrides_work_in_process_and_typos_fail():
    from pathlib import Path

    from mmae_jax.cli.runtime import load_config

    demo = str(Path(__file__).resolve().parents[1] / "configs" / "demo.py")
    config = load_config(["--config", f"{demo}:strategy=ofos", "--config.batch_size=4", "--config.data.fold=2"])
    assert (config.batch_size, config.data.fold, config.data.strategy) == (4, 2, "ofos")
    with pytest.raises(Exception, match="batch_sise"):
        load_config(["--config", demo, "--config.batch_sise=4"])


def run_result(dataset, protocol, war, uar):
    return dict(result(war, uar), dataset=dataset, protocol=protocol)


def test_paper_numbers_appear_beside_ours_only_for_the_papers_dataset_and_protocol(tmp_path):
    from mmae_jax.train.sweep import markdown_table, summarize, write_summary
    rows = summarize({"fslf": [run_result("ravdess", "notebook", 80.0, 79.0)],
                      "face_only": [run_result("ravdess", "notebook", 70.0, 69.0)]})
    table = markdown_table(rows, splits_sha256="ab" * 32)
    assert "paper UAR / WAR % |" in table.splitlines()[0]
    assert "| fslf | notebook | 1 | 79.00 ± 0.00 | 80.00 ± 0.00 | - | - | 83.23 / 83.61 |" in table
    assert "| face_only | notebook | 1 | 69.00 ± 0.00 | 70.00 ± 0.00 | - | - | - / 74.13 |" in table
    assert "sha256 " + "ab" * 32 in table
    write_summary(tmp_path, rows, "ab" * 32)
    stored = json.loads((tmp_path / "summary.json").read_text())
    assert stored[0]["published"] == {"uar": 83.23, "war": 83.61} and stored[0]["splits_sha256"] == "ab" * 32
    other = markdown_table(summarize({"fslf": [run_result("ravdess", "kfold", 80.0, 79.0)]}))
    assert "published" not in other and "83.23" not in other
    crema = markdown_table(summarize({"fslf": [run_result("crema_d", "notebook", 80.0, 79.0)]}))
    assert "79.12 / 79.36" in crema


def test_tables_name_the_folds_of_the_finished_runs():
    from mmae_jax.train.sweep import markdown_table, summarize
    runs = [dict(run_result("ravdess", "kfold", 80.0, 79.0), fold=fold) for fold in (3, 0)]
    rows = summarize({"fslf": [*runs, {"status": "not_run", "fold": 5}]})
    assert rows[0]["folds"] == "kfold 0, 3"
    assert "| fslf | kfold 0, 3 | 2 of 3 (unfinished: fold 5) |" in markdown_table(rows)


def test_hicmae_runs_name_the_best_published_systems():
    from mmae_jax.train.sweep import markdown_table, summarize
    table = markdown_table(summarize({"fslf": [run_result("crema_d", "hicmae", 80.0, 79.0)]}))
    assert "HiCMAE-B 84.91 / 84.89" in table and "AVF-MAE++ 86.02 / 85.95" in table
    assert "paper UAR" not in table
