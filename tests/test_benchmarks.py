"""The benchmark scripts, run through the report in their smallest settings, so they cannot rot.

One module-scoped run of ``benchmarks/report.py --quick`` runs every benchmark script that
exists (train step: tiny model, 4x32 input, 1 step; preprocessing: 1 repeat; input
pipeline: 8 clips, 1 batch per strategy; step profile: tiny, 4x32) and writes the report; the tests read the report's tables back.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"^-?\d+(\.\d+)?(e[-+]?\d+)?$")

pytestmark = pytest.mark.xdist_group("benchmarks")


def _load_common():
    spec = importlib.util.spec_from_file_location("bench_common", ROOT / "benchmarks" / "common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


common = _load_common()


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory) -> str:
    output = tmp_path_factory.mktemp("bench") / "benchmarks.md"
    result = subprocess.run([sys.executable, "benchmarks/report.py", "--quick", "--output", str(output),
                             "--note", "Quick settings, for the tests."],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return output.read_text()


def _section(report: str, name: str) -> str:
    match = re.search(rf"^## {name}\n(.*?)(?=^## |\Z)", report, flags=re.M | re.S)
    assert match, f"no section '{name}' in the report:\n{report[:3000]}"
    return match.group(1)


def _numbers(cells: list[str]) -> list[float]:
    return [float(cell) for cell in cells if NUMBER.match(cell)]


@pytest.mark.slow
def test_report_names_machine_versions_and_commands(quick_report):
    machine = _section(quick_report, "Machine")
    assert "- CPU: " in machine and "jax " in machine and "torch " in machine, machine
    assert "Quick settings, for the tests." in quick_report
    assert "python benchmarks/train_step.py --variant tiny" in _section(quick_report, "train_step")
    assert "python benchmarks/pipeline.py --clips 8" in _section(quick_report, "pipeline")
    assert "python benchmarks/prep.py --repeats 1" in _section(quick_report, "prep")
    assert "python benchmarks/profile_step.py --variant tiny" in _section(quick_report, "profile_step")


@pytest.mark.slow
def test_profile_groups_name_hlo_kinds_and_their_shares_add_up(quick_report):
    header, rows = common.parse_markdown_table(_section(quick_report, "profile_step"))
    assert header[:4] == ["ms", "share %", "calls", "HLO kind"], header
    shares = [float(row[1]) for row in rows]
    assert rows and sum(shares) <= 100.5 and shares == sorted(shares, reverse=True), rows
    assert any(row[3] in ("dot", "ynn_fusion", "convolution") for row in rows), rows


@pytest.mark.slow
def test_train_step_table_has_positive_rates_for_both_frameworks(quick_report):
    header, rows = common.parse_markdown_table(_section(quick_report, "train_step"))
    assert [row[0] for row in rows] == ["tiny"], rows
    row = dict(zip(header, rows[0]))
    assert (row["input"], row["batch"], row["dtype"]) == ("4x32", "1", "float32"), row
    for column in ("JAX clips/s", "PyTorch eager clips/s", "JAX/eager"):
        assert NUMBER.match(row[column]) and float(row[column]) > 0, (column, row)
    ratio = float(row["JAX clips/s"]) / float(row["PyTorch eager clips/s"])
    assert float(row["JAX/eager"]) == pytest.approx(ratio, rel=0.02, abs=0.01), row
    verdict = row[next(name for name in header if name.startswith("goal"))]
    assert verdict.split()[0] == ("met" if float(row["JAX/eager"]) >= 1.0 else "missed"), row


@pytest.mark.slow
def test_pretrain_step_table_gives_both_rates_and_their_ratio(quick_report):
    header, rows = common.parse_markdown_table(_section(quick_report, "pretrain_step"))
    row = dict(zip(header, rows[0]))
    assert (row["variant"], row["input"], row["encoder tokens (visible/all)"]) == ("tiny", "4x32", "4/8"), row
    ratio = float(row["pre-train clips/s"]) / float(row["fine-tune clips/s"])
    assert float(row["pre-train / fine-tune"]) == pytest.approx(ratio, rel=0.02, abs=0.01), row


@pytest.mark.slow
@pytest.mark.parametrize("name", ["train_step", "prep", "pipeline", "profile_step", "pretrain_step"])
def test_every_table_number_is_positive(quick_report, name):
    header, rows = common.parse_markdown_table(_section(quick_report, name))
    numbers = _numbers([cell for row in rows for cell in row])
    assert rows and len(numbers) >= len(rows), (header, rows)
    assert all(number > 0 for number in numbers), (header, rows)


def test_markdown_table_round_trip():
    header, rows = ["what", "clips/s"], [["a", "1.5"], ["bb", "20.25"]]
    assert common.parse_markdown_table("intro\n" + common.markdown_table(header, rows) + "\nend") == (header, rows)


def test_interleaved_timing_alternates_order_and_drops_warmup():
    calls = []
    timed = common.time_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                                    warmup=1, repeats=2)
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert {name: len(seconds) for name, seconds in timed.items()} == {"a": 2, "b": 2}
