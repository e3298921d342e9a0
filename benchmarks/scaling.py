"""The scaling table (docs/scaling_table.md, see docs/scaling.md): ``mmae-jax plan`` over models x
targets x tasks.

    .venv-aot/bin/python benchmarks/scaling.py [--output docs/scaling_table.md] [--jobs 2]
        [--variants small,base,large,huge] [--targets v5e-4,...] [--tasks finetune,pretrain]
        [--per-chip-batch auto|N|N:REMAT] [--override mesh.fsdp=2 ...]
    .venv-aot/bin/python benchmarks/scaling.py --from-cells --output docs/scaling_table.md

Every cell compiles, on this machine, the step that `train` (fine-tuning, VideoMAE's recipe) or
`pretrain` (MAE pre-training) runs at 16x224 in bfloat16 on the target, with `--per-chip-batch
auto` over the remat policies `none` and `full` in powers of two, and keeps the fastest batch
that fits (or, with `--per-chip-batch N[:REMAT]`, compiles each cell once at that batch).
`--override KEY=VALUE` changes the config of every cell (a cell's file name includes it). Each
cell's JSON is kept in --cells-dir, and a cell whose JSON exists is not compiled again (delete
it, or give --fresh, to redo it); `--from-cells` compiles nothing and tables every cell of the
directory, whichever run made it. Compiling needs the side environment with libtpu and the CUDA
plugin (`make aot`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import machine_lines, markdown_table

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("small", "base", "large", "huge")
TARGETS = ("v5e-4", "v4-16", "v5e-256", "v5p-128", "2xv5e-256", "h100x8", "a100x8")
# task -> the config (FILE_OR_NAME:ARGS with {variant}) and its overrides.
TASKS = {"finetune": ("ravdess:variant={variant},recipe=videomae", []),
         "pretrain": ("pretrain_ravdess:variant={variant}", [])}
COMMON = ["--config.model.dtype=bfloat16", "--config.data.num_frames=16", "--config.data.image_size=224"]
SEARCH = ["--per-chip-batch", "auto", "--remat", "none,full", "--powers-of-two", "--max-per-chip-batch", "256"]
# Clips in one epoch: RAVDESS (all 1,440 speech videos), CREMA-D (7,442), VoxCeleb2 dev (1,092,009).
EPOCH_CLIPS = {"RAVDESS": 1440, "CREMA-D": 7442, "VoxCeleb2": 1092009}


def cell_command(python: str, variant: str, target: str, task: str, out: Path, batch: str,
                 overrides: tuple[str, ...] = ()) -> list[str]:
    """``batch``: ``auto`` (the search over remat none and full) or ``N`` or ``N:REMAT`` (one compile);
    ``overrides``: ``KEY=VALUE`` config changes of every cell (``mesh.fsdp=2``)."""
    config, task_overrides = TASKS[task]
    per_chip, _, remat = batch.partition(":")
    size = SEARCH if per_chip == "auto" else ["--per-chip-batch", per_chip, f"--config.model.remat_policy={remat or 'none'}"]
    return [python, "-m", "mmae_jax.cli", "plan", "--config", config.format(variant=variant), "--topology", target,
            *task_overrides, *COMMON, *(f"--config.{override}" for override in overrides), *size, "--json", str(out)]


def cell_name(variant: str, target: str, task: str, batch: str, overrides: tuple[str, ...] = ()) -> str:
    """The file name of a cell's JSON: one per task, model, target, batch and set of overrides."""
    return "-".join([task, variant, target, batch.replace(":", "-"), *sorted(overrides)]) + ".json"


def run_cell(python: str, variant: str, target: str, task: str, cells_dir: Path, fresh: bool,
             batch: str = "auto", overrides: tuple[str, ...] = ()) -> dict:
    """Plan one cell (or read its JSON): the plan's JSON plus ``wall_seconds`` and ``command``."""
    out = cells_dir / cell_name(variant, target, task, batch, overrides)
    command = cell_command(python, variant, target, task, out, batch, overrides)
    if out.exists() and not fresh:
        return _read_cell(out)
    started = time.perf_counter()
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    result = json.loads(out.read_text()) if out.exists() else {}
    result.update(variant=variant, target=target, task_name=task, returncode=run.returncode,
                  wall_seconds=time.perf_counter() - started,
                  command=" ".join(["mmae-jax", *map(shlex.quote, command[3:-2])]),
                  error=run.stderr.strip().splitlines()[-1] if run.returncode and run.stderr.strip() else "")
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


def collected_cells(cells_dir: Path) -> list[dict]:
    """Every cell JSON in ``cells_dir``, in the order of the grid: task, model, target, batch."""
    def order(cell: dict) -> tuple:
        return (_index(tuple(TASKS), cell.get("task_name")), _index(VARIANTS, cell.get("variant")),
                _index(TARGETS, cell.get("target")), cell.get("per_chip_batch") or 0, cell.get("command", ""))
    return sorted((_read_cell(path) for path in sorted(cells_dir.glob("*.json"))), key=order)


class CellError(ValueError):
    """A file in a cells folder that is not a cell this script wrote."""


# What every cell this script writes holds, fitting or not.
CELL_KEYS = ("variant", "target", "task_name", "command", "wall_seconds")


def _read_cell(path: Path) -> dict:
    try:
        cell = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CellError(f"{path} is not JSON ({error}): delete it, and compile the cell again") from None
    missing = [key for key in CELL_KEYS if not isinstance(cell, dict) or key not in cell]
    if missing:
        raise CellError(f"{path} is not a cell of benchmarks/scaling.py (no {', '.join(missing)}): "
                        "move it out of the cells folder")
    return cell


def _index(names: tuple[str, ...], name: str | None) -> int:
    return names.index(name) if name in names else len(names)


def _now() -> str:
    return f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M}"


def _duration(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


# Per chip, except clips/s (the whole target) and the epoch times.
HEADER = ("model", "target", "task", "mesh", "remat", "clips/chip", "peak / HBM", "TFLOP/step (model)", "step (roofline)",
          "MFU", "collectives per chip", "clips/s", "epoch " + " / ".join(EPOCH_CLIPS), "compile here")


def row(cell: dict) -> list[str]:
    """One cell's row of the table (``HEADER``)."""
    # The chosen step's lowering and compiling; a search, or a cell nothing fits, shows its whole wall time.
    seconds = cell["wall_seconds"] if "search" in cell or not cell.get("compile_seconds") else cell["compile_seconds"]
    name, compile_time = f"ViT-{cell['variant'][0].upper()}", _duration(seconds)
    if not cell.get("fits"):
        reason = cell.get("error") or "not even 1 clip per chip fits"
        return [name, cell["target"], cell["task_name"], "-", "-", str(cell.get("per_chip_batch") or 0), reason,
                *["-"] * 6, compile_time]
    line = cell["roofline"]
    step = f"{line['step_seconds'] * 1e3:.0f} ms " + ("(peak)" if line["bound"] == "peak" else line["bound"])
    traffic = sum(entry["bytes"] for entry in cell["collectives"].values()) / 2 ** 30
    kinds = ", ".join(sorted(cell["collectives"])) or "none"
    mesh = ", ".join(f"{axis} {size}" for axis, size in cell["mesh"].items() if size > 1) or "1 chip"
    return [name, cell["target"], cell["task_name"], mesh, cell["remat_policy"], str(cell["per_chip_batch"]),
            f"{cell['memory']['peak'] / 2 ** 30:.1f} / {cell['hbm_bytes'] / 2 ** 30:.0f} GiB",
            f"{cell['flops_per_step_model'] / cell['chips'] / 1e12:.1f}", step, "-" if line["mfu"] is None else f"{line['mfu']:.0%}",
            f"{traffic:.2f} GiB ({kinds})", f"{cell['clips_per_second']:,.0f}",
            " / ".join(_duration(clips / cell["clips_per_second"]) for clips in EPOCH_CLIPS.values()), compile_time]


def compiled_cells(args: argparse.Namespace, cells_dir: Path) -> list[dict]:
    """Every cell of the grid the arguments name, compiled unless its JSON is in ``cells_dir``."""
    cells_dir.mkdir(parents=True, exist_ok=True)
    cells = [(variant, target, task) for task in args.tasks.split(",") for variant in args.variants.split(",")
             for target in args.targets.split(",")]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        return list(pool.map(lambda cell: run_cell(args.python, *cell, cells_dir, args.fresh, args.per_chip_batch,
                                                   tuple(args.override)), cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="write the markdown report here (default: print it)")
    parser.add_argument("--cells-dir", type=Path, default=ROOT / "workdirs" / "scaling")
    parser.add_argument("--python", default=str(ROOT / ".venv-aot" / "bin" / "python"),
                        help="the Python with libtpu and the CUDA plugin (make aot)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--jobs", type=int, default=1, help="cells compiled at once")
    parser.add_argument("--fresh", action="store_true", help="compile every cell again")
    parser.add_argument("--per-chip-batch", default="auto",
                        help="auto (search), or N / N:REMAT for one compile per cell at that batch")
    parser.add_argument("--from-cells", action="store_true",
                        help="compile nothing: the table of every cell JSON in --cells-dir")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="a config change for every cell, as --config.KEY=VALUE of plan (repeatable)")
    args = parser.parse_args()
    if not args.from_cells and not Path(args.python).exists():
        print(f"error: {args.python} is missing (make aot builds it)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        results = (collected_cells(args.cells_dir) if args.from_cells
                   else compiled_cells(args, args.cells_dir))
    except CellError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not results:
        print(f"error: {args.cells_dir} holds no cell JSON (give the --cells-dir of a run)", file=sys.stderr)
        return 2
    if args.from_cells:
        made = (f"Collected by `benchmarks/scaling.py --from-cells` on {_now()} UTC from the {len(results)} cells "
                f"in {args.cells_dir.name}/")
    else:
        made = (f"Produced by `benchmarks/scaling.py` on {_now()} UTC ({len(results)} cells, "
                f"{_duration(time.perf_counter() - started)} of wall time here, {args.jobs} at once)")
    lines = [f"{made}; each cell's command:", "",
             "```bash", *sorted({cell["command"] for cell in results}), "```", "", *machine_lines(), "",
             markdown_table(HEADER, [row(cell) for cell in results])]
    text = "\n".join(lines) + "\n"
    if args.output:
        args.output.write_text(text)
    else:
        print(text)
    return sum(1 for cell in results if cell.get("returncode", 0) not in (0, 1))


if __name__ == "__main__":
    sys.exit(main())
