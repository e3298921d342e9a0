"""Training across simulated devices, two localhost processes, and SIGTERM / resume."""

import json
import os
import shutil
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
from stored_dataset import write_stored_dataset

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.xdist_group("subprocess_training")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tfds")
    write_stored_dataset(path)
    return path


def config_flags(data_dir, **changes) -> list[str]:
    """``--config`` arguments for a tiny run of configs/demo.py on the stored test dataset."""
    values = {"data.data_dir": str(data_dir), "data.image_size": 32, "data.num_frames": 4,
              "data.shuffle_buffer": 64, "batch_size": 8, "num_epochs": 2, "eval.every_epochs": 1,
              "eval.batch_size": 16, "optim.warmup_epochs": 0.0, "log_every_steps": 1,
              "checkpoint.every_steps": 1, **changes}
    return ["--config", str(ROOT / "configs" / "demo.py"), *[f"--config.{k}={v}" for k, v in values.items()]]


def environment(devices: int = 1) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(ROOT / "tests"), env.get("PYTHONPATH")]))
    return env


def train_losses(workdir: Path) -> list[float]:
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if r["split"] == "train"]


MESH_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, "configs")
    import jax, demo
    from mmae_jax.train.classification import ClassificationTask
    from mmae_jax.train.loop import Trainer
    config = demo.get_config()
    config.data.update(data_dir=sys.argv[1], image_size=32, num_frames=4, shuffle_buffer=64)
    config.update(batch_size=8, max_steps=4, num_epochs=1)
    config.mesh.update(data=int(sys.argv[3]), fsdp=int(sys.argv[4]))
    trainer = Trainer(config, sys.argv[2], ClassificationTask())
    trainer.run()
    kernel = trainer.state["trainable"]["encoder"]["blocks"][0]["mlp"]["fc1"]["kernel"]
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


def launch_two_hosts(data_dir, workdir, max_steps) -> None:
    port = free_port()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "mmae_jax.cli", "train", "--workdir", str(workdir),
         "--coordinator-address", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(rank),
         *config_flags(data_dir, max_steps=max_steps)],
        cwd=ROOT, env=environment(1), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for rank in range(2)]
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    for rank, (proc, output) in enumerate(zip(procs, outputs)):
        assert proc.returncode == 0, f"process {rank}:\n{output[-3000:]}"


def test_two_processes_train_save_and_resume(data_dir, tmp_path):
    launch_two_hosts(data_dir, tmp_path, max_steps=5)
    uninterrupted = json.loads((tmp_path / "results.json").read_text())
    assert uninterrupted["steps"] == 5 and len(train_losses(tmp_path)) == 5
    # Lose the last checkpoint and the results, as a run stopped after step 4 would have.
    shutil.rmtree(tmp_path / "checkpoints" / "5")
    (tmp_path / "results.json").unlink()
    launch_two_hosts(data_dir, tmp_path, max_steps=5)
    results = json.loads((tmp_path / "results.json").read_text())
    steps = [json.loads(l)["step"] for l in (tmp_path / "metrics.jsonl").read_text().splitlines()
             if json.loads(l)["split"] == "train"]
    assert steps == [1, 2, 3, 4, 5]                                 # resumed at 5, nothing repeated
    assert results["test"]["num_examples"] == 8                     # each test clip once across hosts
    assert results["test"]["war"] == uninterrupted["test"]["war"]


def test_sigterm_then_restart_gives_the_uninterrupted_result(data_dir, tmp_path):
    command = [sys.executable, "-m", "mmae_jax.cli", "train", "--workdir"]
    flags = config_flags(data_dir, num_epochs=3)
    reference = subprocess.run([*command, str(tmp_path / "reference"), *flags], cwd=ROOT, env=environment(),
                               capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]

    workdir = tmp_path / "interrupted"
    proc = subprocess.Popen([*command, str(workdir), *flags], cwd=ROOT, env=environment(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(train_losses(workdir) if (workdir / "metrics.jsonl").exists() else []) < 5:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=300)[0]
    assert proc.returncode == EXIT_PREEMPTED, output[-3000:]
    assert "stopped by SIGTERM" in output
    assert not (workdir / "results.json").exists()

    resumed = subprocess.run([*command, str(workdir), *flags], cwd=ROOT, env=environment(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected = json.loads((tmp_path / "reference" / "results.json").read_text())
    got = json.loads((workdir / "results.json").read_text())
    assert got["test"]["war"] == expected["test"]["war"] and got["test"]["uar"] == expected["test"]["uar"]
    assert got["validation_history"] == expected["validation_history"]
    np.testing.assert_allclose(train_losses(workdir), train_losses(tmp_path / "reference"), rtol=1e-5)
