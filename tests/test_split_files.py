"""Split membership files: deterministic, complete, and changing with the protocol."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from mmae_jax.config.defaults import default_data_config
from mmae_jax.data.split_files import SUMS_FILE, split_tables, write_split_files


def data_cfg(data_dir, protocol: str):
    cfg = default_data_config()
    cfg.update(dataset="synthetic", data_dir=str(data_dir), protocol=protocol)
    return cfg


def rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_split_files_are_identical_across_runs_and_change_with_the_protocol(data_dir, tmp_path):
    first = write_split_files(data_cfg(data_dir, "kfold"), tmp_path / "a")
    second = write_split_files(data_cfg(data_dir, "kfold"), tmp_path / "b")
    assert first == second and tree(tmp_path / "a") == tree(tmp_path / "b")
    assert len(tree(tmp_path / "a")) == 2 + 6 * 3          # protocol.json, SHA256SUMS, 6 folds x 3 splits
    hicmae = write_split_files(data_cfg(data_dir, "hicmae"), tmp_path / "c")
    assert hicmae != first
    assert tree(tmp_path / "c")["fold_0/test.csv"] == tree(tmp_path / "a")["fold_0/test.csv"]
    assert tree(tmp_path / "c")["fold_0/train.csv"] != tree(tmp_path / "a")["fold_0/train.csv"]
    seeded = data_cfg(data_dir, "random_split")
    other_seed = data_cfg(data_dir, "random_split")
    other_seed.split_seed = 1
    assert write_split_files(seeded, tmp_path / "d") != write_split_files(other_seed, tmp_path / "e")


def test_every_clip_is_listed_once_per_fold_with_its_label_speaker_and_content_hash(data_dir):
    files = split_tables(data_cfg(data_dir, "hicmae"))
    for fold in range(6):
        train, validation, test = (rows(files[f"fold_{fold}/{split}.csv"]) for split in ("train", "validation", "test"))
        assert validation == []
        assert len(train) + len(test) == 48
        assert not {r["speaker"] for r in train} & {r["speaker"] for r in test}
        assert [r["clip_id"] for r in test] == sorted(r["clip_id"] for r in test)
    everyone = rows(files["fold_0/train.csv"]) + rows(files["fold_0/test.csv"])
    assert all(r["label_name"] == f"class{r['label']}" for r in everyone)
    # the synthetic examples differ in content, so their hashes do
    assert len({r["example_sha256"] for r in everyone}) == 48
    one = next(r for r in everyone if r["clip_id"] == "clip-03-01")
    assert (one["speaker"], one["label"]) == ("3", str((3 + 1) % 4))
    assert SUMS_FILE in files


def test_notebook_validation_overlaps_training(data_dir):
    files = split_tables(data_cfg(data_dir, "notebook"))
    train, validation, test = (rows(files[f"{split}.csv"]) for split in ("train", "validation", "test"))
    ids = {name: {r["clip_id"] for r in table} for name, table in
           (("train", train), ("validation", validation), ("test", test))}
    assert len(ids["test"]) == 12 and len(ids["train"]) == 36 and len(ids["validation"]) == 24
    assert ids["validation"] <= ids["train"] and not ids["train"] & ids["test"]


def test_splits_command_prints_the_hash_of_the_files(data_dir, tmp_path, capsys):
    from mmae_jax.cli import main
    demo = str(Path(__file__).resolve().parents[1] / "configs" / "demo.py")
    assert main(["splits", "--config", f"{demo}:protocol=hicmae", f"--config.data.data_dir={data_dir}",
                 "--out", str(tmp_path / "out")]) == 0
    expected = write_split_files(data_cfg(data_dir, "hicmae"), tmp_path / "again")
    assert f"sha256 {expected}" in capsys.readouterr().out


def test_kfold_summary_names_the_hash_of_the_split_files_it_wrote(data_dir, tmp_path, monkeypatch, capsys):
    from mmae_jax.cli import main
    from mmae_jax.data.split_files import splits_sha256
    from mmae_jax.train import sweep

    monkeypatch.setattr(sweep, "train_and_evaluate", lambda config, workdir, validate=True: {"test": {"war": 50.0, "uar": 40.0}})
    demo = str(Path(__file__).resolve().parents[1] / "configs" / "demo.py")
    assert main(["kfold", "--config", f"{demo}:protocol=hicmae", f"--config.data.data_dir={data_dir}",
                 "--workdir", str(tmp_path), "--folds", "0,2"]) == 0
    written = {str(p.relative_to(tmp_path / "splits")): p.read_text() for p in (tmp_path / "splits").rglob("*")
               if p.is_file()}
    assert sorted(p for p in written if p.startswith("fold_")) == [
        "fold_0/test.csv", "fold_0/train.csv", "fold_0/validation.csv",
        "fold_2/test.csv", "fold_2/train.csv", "fold_2/validation.csv"]
    digest = splits_sha256(written)
    assert f"sha256 {digest}" in capsys.readouterr().out
    assert f"sha256 {digest}" in (tmp_path / "summary.md").read_text()


def test_writing_again_replaces_the_folder_whole_and_a_foreign_folder_is_refused(data_dir, tmp_path, capsys):
    from mmae_jax.cli import main

    write_split_files(data_cfg(data_dir, "kfold"), tmp_path / "out")
    write_split_files(data_cfg(data_dir, "notebook"), tmp_path / "out")
    assert tree(tmp_path / "out") == tree_of_new(data_dir, tmp_path)       # no fold_<k>/ of kfold left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "out"]    # no staging folder left
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    demo = str(Path(__file__).resolve().parents[1] / "configs" / "demo.py")
    assert main(["splits", "--config", demo, f"--config.data.data_dir={data_dir}",
                 "--out", str(tmp_path / "mine")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "holds no split files" in err[-1]
    assert tree(tmp_path / "mine") == {"notes.txt": b"keep me"}


def tree_of_new(data_dir, tmp_path) -> dict[str, bytes]:
    write_split_files(data_cfg(data_dir, "notebook"), tmp_path / "new")
    return tree(tmp_path / "new")
