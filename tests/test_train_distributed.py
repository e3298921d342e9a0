"""Training across simulated devices, two localhost processes, and SIGTERM / resume."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from mmae_jax.errors import EXIT_PREEMPTED
from stored_dataset import tiny_flags

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.xdist_group("subprocess_training"), pytest.mark.slow]


def environment(devices: int = 1) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1",
               XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH")]))
    return env


def train_losses(workdir: Path) -> list[float]:
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r["split"] == "train"]


MESH_SCRIPT = textwrap.dedent("""
    import json, sys
    import jax
    from mmae_jax.train.classification import ClassificationTask
    from mmae_jax.train.loop import Trainer
    from stored_dataset import tiny_config
    config = tiny_config(sys.argv[1], max_steps=4, num_epochs=1,
                         **{"mesh.data": int(sys.argv[3]), "mesh.fsdp": int(sys.argv[4])})
    trainer = Trainer(config, sys.argv[2], ClassificationTask())
    trainer.run()
    kernel = trainer.state["trainable"]["encoder"]["blocks"]["0"]["mlp"]["fc1"]["kernel"]
    print(json.dumps({"devices": jax.device_count(), "kernel_spec": str(kernel.sharding.spec),
                      "kernel_shard_shape": list(kernel.addressable_shards[0].data.shape)}))
""")


def run_mesh(data_dir, workdir, devices, data, fsdp) -> dict:
    out = subprocess.run([sys.executable, "-c", MESH_SCRIPT, str(data_dir), str(workdir), str(data), str(fsdp)],
                         cwd=ROOT, env=environment(devices), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_data_fsdp_mesh_matches_one_device(data_dir, tmp_path):
    single = run_mesh(data_dir, tmp_path / "one", devices=1, data=1, fsdp=1)
    sharded = run_mesh(data_dir, tmp_path / "eight", devices=8, data=4, fsdp=2)
    assert single["devices"] == 1 and sharded["devices"] == 8
    assert "fsdp" in sharded["kernel_spec"]                         # parameters really split
    assert np.prod(sharded["kernel_shard_shape"]) * 2 == 128 * 512
    np.testing.assert_allclose(train_losses(tmp_path / "eight"), train_losses(tmp_path / "one"),
                               rtol=2e-4, atol=2e-5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_two_hosts(data_dir, workdir, sigterm_after: int | None = None) -> list[tuple[int, str]]:
    """Train on two localhost processes (three epochs, a checkpoint at each epoch end); with
    ``sigterm_after``, SIGTERM process 1 alone once that many train steps are logged.
    Returns each process's (exit code, output)."""
    port = free_port()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "mmae_jax.cli", "train", "--workdir", str(workdir),
         "--coordinator-address", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(rank),
         *tiny_flags(data_dir)],
        cwd=ROOT, env=environment(1), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for rank in range(2)]
    if sigterm_after is not None:
        deadline = time.time() + 300
        while time.time() < deadline and not ((workdir / "metrics.jsonl").exists()
                                              and len(train_losses(workdir)) >= sigterm_after):
            time.sleep(0.2)
        procs[1].send_signal(signal.SIGTERM)
    return [(proc.returncode, output) for proc, output in
            ((proc, proc.communicate(timeout=600)[0]) for proc in procs)]


def assert_finished(outcomes) -> None:
    for rank, (code, output) in enumerate(outcomes):
        assert code == 0, f"process {rank}:\n{output[-3000:]}"


def test_sigterm_to_one_host_stops_both_and_the_restart_gives_the_uninterrupted_result(data_dir, tmp_path):
    assert_finished(launch_two_hosts(data_dir, tmp_path / "reference"))
    workdir = tmp_path / "interrupted"
    outcomes = launch_two_hosts(data_dir, workdir, sigterm_after=2)
    for rank, (code, output) in enumerate(outcomes):
        assert code == EXIT_PREEMPTED, f"process {rank}:\n{output[-3000:]}"
    assert "stopped by SIGTERM" in outcomes[0][1]                  # process 0 stops too, told by process 1
    assert not (workdir / "results.json").exists()
    assert 2 <= len(train_losses(workdir)) < 12

    assert_finished(launch_two_hosts(data_dir, workdir))
    expected = json.loads((tmp_path / "reference" / "results.json").read_text())
    got = json.loads((workdir / "results.json").read_text())
    steps = [json.loads(l)["step"] for l in (workdir / "metrics.jsonl").read_text().splitlines()
             if json.loads(l)["split"] == "train"]
    assert steps == list(range(1, 13))                              # resumed, nothing repeated
    assert got["test"]["num_examples"] == 8                         # each test clip once across hosts
    assert got["test"] == expected["test"]
    assert got["validation_history"] == expected["validation_history"]
    np.testing.assert_allclose(train_losses(workdir), train_losses(tmp_path / "reference"), rtol=1e-5)
