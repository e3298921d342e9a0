"""benchmarks/scaling.py: the command and file of each cell, and the row it gives in the table.

The compiles themselves are tested in test_plan_compile.py; these check the bookkeeping around
them, so that two cells never share a JSON file and a row says what was compiled.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load_scaling():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("bench_scaling", ROOT / "benchmarks" / "scaling.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


scaling = _load_scaling()


def _fitting_cell(**changes) -> dict:
    cell = dict(variant="huge", target="v5e-256", task_name="finetune", fits=True, remat_policy="none",
                per_chip_batch=8, mesh={"slice": 1, "data": 128, "fsdp": 2}, hbm_bytes=16 * 2 ** 30,
                memory={"peak": 14 * 2 ** 30}, chips=256, flops_per_step_model=256 * 57.3e12,
                roofline={"step_seconds": 0.25, "bound": "compute", "mfu": 1.0},
                collectives={"all-reduce": {"count": 3, "bytes": 2 ** 30}, "all-gather": {"count": 5, "bytes": 2 ** 30}},
                clips_per_second=8192.0, wall_seconds=700.0)
    cell.update(changes)
    return cell


def test_cells_with_other_overrides_get_their_own_file_and_command(tmp_path):
    plain = scaling.cell_name("huge", "v5e-256", "finetune", "8")
    split = scaling.cell_name("huge", "v5e-256", "finetune", "8", ("mesh.fsdp=2",))
    assert plain != split
    # The order the overrides are given in names the same cell.
    assert (scaling.cell_name("huge", "v5e-256", "finetune", "8", ("mesh.fsdp=2", "model.remat_policy=full"))
            == scaling.cell_name("huge", "v5e-256", "finetune", "8", ("model.remat_policy=full", "mesh.fsdp=2")))
    command = scaling.cell_command("python", "huge", "v5e-256", "finetune", tmp_path / split, "8", ("mesh.fsdp=2",))
    assert "--config.mesh.fsdp=2" in command
    assert command[command.index("--topology") + 1] == "v5e-256"
    assert command[command.index("--per-chip-batch") + 1] == "8"
    assert "--config.mesh.fsdp=2" not in scaling.cell_command("python", "huge", "v5e-256", "finetune",
                                                              tmp_path / plain, "8")


def test_a_row_names_the_mesh_batch_and_collective_traffic():
    row = dict(zip(scaling.HEADER, scaling.row(_fitting_cell())))
    assert row["model"] == "ViT-H"
    assert row["mesh"] == "data 128, fsdp 2"
    assert row["clips/chip"] == "8"
    assert row["peak / HBM"] == "14.0 / 16 GiB"
    assert row["step (roofline)"] == "250 ms compute"
    assert row["TFLOP/step (model)"] == "57.3"        # per chip
    assert row["collectives per chip"] == "2.00 GiB (all-gather, all-reduce)"
    assert row["compile here"] == "11.7 min"


def test_a_cell_that_does_not_fit_says_why_and_gives_no_figures():
    reason = "error: the step does not fit: it needs 15.99G per chip, 15.75G available"
    cell = dict(variant="huge", target="v5e-4", task_name="finetune", fits=False, per_chip_batch=8,
                error=reason, wall_seconds=50.0)
    row = dict(zip(scaling.HEADER, scaling.row(cell)))
    assert row["peak / HBM"] == reason
    assert row["clips/chip"] == "8"
    assert row["MFU"] == row["clips/s"] == "-"
    assert len(scaling.row(cell)) == len(scaling.HEADER)


def test_tabling_a_folder_without_cells_stops_with_one_error_line(tmp_path):
    missing = tmp_path / "no_such_run"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scaling.py"), "--from-cells",
                             "--cells-dir", str(missing)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {missing} holds no cell JSON (give the --cells-dir of a run)"]
    assert not missing.exists()


def _table_from_cells(cells_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scaling.py"), "--from-cells", "--cells-dir",
                           str(cells_dir)], capture_output=True, text=True, timeout=120)


def test_a_broken_or_foreign_file_among_the_cells_is_named_in_one_error_line(tmp_path):
    (tmp_path / "finetune-base-v5e-4-8.json").write_text('{"fits": tr')          # cut off mid-write
    result = _table_from_cells(tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1
    assert lines[0].startswith(f"error: {tmp_path / 'finetune-base-v5e-4-8.json'} is not JSON")
    (tmp_path / "finetune-base-v5e-4-8.json").write_text('{"fits": true}')       # some other JSON
    result = _table_from_cells(tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1
    assert "is not a cell of benchmarks/scaling.py (no variant, target, task_name, command" in lines[0]
