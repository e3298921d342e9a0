"""Run the CPU benchmarks and write their tables to one markdown report (``make bench``).

Each benchmark script that exists runs in its own process with its default (or, with
``--quick``, its smallest) settings; the report holds the machine, the versions, each
command, its wall time and its printed table. A script that fails is reported with the
end of its error output, the others still run, and the exit status counts the failures.

    .venv/bin/python benchmarks/report.py [--output docs/benchmarks.md] [--quick] [--note TEXT]
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import subprocess
import sys
import time
from pathlib import Path

from common import machine_lines

ROOT = Path(__file__).resolve().parent.parent

# script (relative to the repository root), arguments for the report, arguments for --quick
# (None: its smallest settings are not known here, so --quick leaves it out).
BENCHMARKS: tuple[tuple[str, list[str], list[str] | None], ...] = (
    ("benchmarks/train_step.py", [], ["--variant", "tiny", "--frames", "4", "--size", "32",
                                      "--batch", "1", "--steps", "1", "--warmup", "0",
                                      "--no-torch-compile"]),
    ("benchmarks/prep.py", [], ["--repeats", "1"]),
    ("benchmarks/pipeline.py", [], ["--clips", "8", "--batches", "1"]),
    ("benchmarks/input_wait.py", [], ["--frames", "4", "--size", "32", "--batch", "2", "--steps", "2"]),
    ("benchmarks/profile_step.py", ["--variant", "small", "--threads", "1"],
     ["--variant", "tiny", "--frames", "4", "--size", "32", "--batch", "1"]),
    ("benchmarks/pretrain_step.py", [], ["--variants", "tiny", "--frames", "4", "--size", "32", "--batch", "1",
                                         "--steps", "1", "--warmup", "0", "--mask-ratio", "0.5"]),
)
GPU_REPORT = "docs/benchmarks_gpu.md"
ANALYSIS = "docs/benchmarks_analysis.md"    # hand-written: what limits the numbers, what would move them


def run_benchmark(script: str, args: list[str]) -> tuple[str, list[str]]:
    """Run one script; returns (status line, markdown lines of its section)."""
    command = [sys.executable, script, *args]
    shown = " ".join(["python", *map(shlex.quote, command[1:])])
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    lines = [f"## {Path(script).stem}", "", "```bash", shown, "```", ""]
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        lines += [f"**Failed** (exit status {result.returncode}, after {seconds:.0f} s):", "",
                  "```text", tail, "```", ""]
        return f"{script}: FAILED (exit {result.returncode})", lines
    printed = result.stdout.strip().splitlines()
    table_start = next((i for i, line in enumerate(printed) if line.startswith("|")), 0)
    caption = [line for line in printed[:table_start] if line.strip()][-1:]
    lines += [*caption, "", *printed[table_start:], "", f"Wall time of the script: {seconds:.0f} s.", ""]
    return f"{script}: ok ({seconds:.0f} s)", lines


def report(output: Path, quick: bool, note: str) -> int:
    """Write the report to ``output``; returns the number of benchmarks that failed."""
    started = datetime.datetime.now().astimezone()
    header = ["# Benchmarks", "",
              f"Written by `python benchmarks/report.py{' --quick' if quick else ''}` on "
              f"{started:%Y-%m-%d %H:%M %Z} (`make bench` runs it). Every number below was measured "
              "by the command shown above its table.", ""]
    if note:
        header += [note, ""]
    header += ["## Machine", "", *machine_lines(), ""]
    sections, failures = [], 0
    for script, args, quick_args in BENCHMARKS:
        if not (ROOT / script).exists():
            print(f"{script}: not there, left out", flush=True)
            continue
        if quick and quick_args is None:
            print(f"{script}: no quick settings, left out", flush=True)
            continue
        status, lines = run_benchmark(script, quick_args if quick else args)
        print(status, flush=True)
        failures += "FAILED" in status
        sections += lines
    closing = ["## GPU", ""]
    if (ROOT / GPU_REPORT).exists():
        closing.append(f"GPU measurements (base and large, bfloat16): [{Path(GPU_REPORT).name}]"
                   f"({Path(GPU_REPORT).name}).")
    else:
        closing.append("Not measured yet: on a machine with one NVIDIA GPU, JAX (CUDA) and PyTorch (CUDA), "
                   f"run `bash benchmarks/gpu_check.sh OUT_DIR` and copy `OUT_DIR/benchmarks_gpu.md` to "
                   f"`{GPU_REPORT}`.")
    if (ROOT / ANALYSIS).exists():
        closing += ["", "## Analysis", "", f"What limits these numbers and what would move them: "
                f"[{Path(ANALYSIS).name}]({Path(ANALYSIS).name})."]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(header + sections + closing) + "\n")
    print(f"wrote {output} ({failures} benchmark(s) failed)")
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--quick", action="store_true", help="smallest settings (for the tests)")
    parser.add_argument("--note", default="", help="a paragraph placed under the title")
    args = parser.parse_args()
    sys.exit(1 if report(args.output, args.quick, args.note) else 0)


if __name__ == "__main__":
    main()
