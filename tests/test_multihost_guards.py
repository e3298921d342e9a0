"""A refusal on process 0 of a two-host run (workdir in use, another experiment) stops every
process with the same error line, instead of leaving the others waiting in a collective."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stored_dataset import tiny_argv

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.xdist_group("subprocess_training"), pytest.mark.slow]


def two_processes(workdir: Path, data_dir: Path) -> list[tuple[int, str]]:
    """(exit code, output) of each of two localhost processes training in ``workdir``."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    procs = [subprocess.Popen(
        [sys.executable, "-m", "mmae_jax.cli", "train", "--workdir", str(workdir), *tiny_argv(data_dir),
         "--coordinator-address", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(rank)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in range(2)]
    try:
        return [(proc.returncode, output) for proc, output in
                ((proc, proc.communicate(timeout=240)[0]) for proc in procs)]
    finally:
        for proc in procs:
            proc.kill()


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error: ")]


def test_a_workdir_in_use_stops_both_processes_with_one_line(data_dir, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "run.lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    outcomes = two_processes(workdir, data_dir)
    for rank, (code, output) in enumerate(outcomes):
        assert code == 2, f"process {rank}:\n{output[-3000:]}"
        assert len(error_lines(output)) == 1 and "is in use by another run" in error_lines(output)[0], output[-3000:]
    assert error_lines(outcomes[0][1]) == error_lines(outcomes[1][1])


def test_a_workdir_of_another_experiment_stops_both_processes(data_dir, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "results.json").write_text("{}")             # the workdir holds a finished run
    (workdir / "config.json").write_text(json.dumps({"seed": 12345}))
    outcomes = two_processes(workdir, data_dir)
    for rank, (code, output) in enumerate(outcomes):
        assert code == 2, f"process {rank}:\n{output[-3000:]}"
        assert "holds a run of another experiment" in "\n".join(error_lines(output)), output[-3000:]
