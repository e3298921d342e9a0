"""``mmae-jax plan`` compiles the tiny model's real step for TPU and GPU targets on this CPU machine.

Each test runs the command in the side environment that ``make test`` builds (``.venv-aot``:
libtpu and the CUDA plugin wheels over the test environment, so the CPU tests never load them)
and reads its ``--json``. The tiny model at 4 frames of 32x32 keeps each compile under a minute.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from mmae_jax.model.config import VideoMAEConfig
from mmae_jax.model.info import abstract_classifier, analytic_forward_flops, count_parameters

ROOT = Path(__file__).resolve().parents[1]
# `make test` builds it (`make aot`): libtpu and jax-cuda12-plugin / -pjrt at the tested jax version.
AOT_PYTHON = ROOT / ".venv-aot" / "bin" / "python"
SMALL = ["--config", "demo", "--config.data.num_frames=4", "--config.data.image_size=32"]
SYNTHETIC_CLASSES = 8
pytestmark = pytest.mark.slow


def plan(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    """Run ``mmae-jax plan`` with ``args`` in the side environment: (the process, its JSON or None)."""
    assert AOT_PYTHON.exists(), f"{AOT_PYTHON} is missing: run `make aot` (make test builds it)"
    out = tmp_path / "plan.json"
    # The tests' shared compilation cache is left out: plan reports the compile time.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "JAX_"))}
    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run([str(AOT_PYTHON), "-m", "mmae_jax.cli", "plan", *SMALL, *args, "--json", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return run, json.loads(out.read_text()) if out.exists() else None


def tiny_cfg() -> VideoMAEConfig:
    return VideoMAEConfig.from_variant("tiny", num_classes=SYNTHETIC_CLASSES, num_frames=4, img_size=32)


def gradient_bytes() -> int:
    """float32 bytes of the tiny classifier's parameters: what a data-parallel step all-reduces."""
    return 4 * count_parameters(abstract_classifier(tiny_cfg()))


def test_v5e_data_parallel_step_and_the_json_fields(tmp_path):
    run, result = plan(tmp_path, "--topology", "v5e:2x2", "--per-chip-batch", "2")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stderr == ""                     # libtpu's and the CUDA plugin's start-up lines stay hidden
    assert "fits" in run.stdout and "roofline" in run.stdout
    assert (result["chips"], result["hosts"], result["global_batch"]) == (4, 1, 8)
    assert result["mesh"] == {"slice": 1, "data": 4, "fsdp": 1}
    assert result["attention"] == "splash"      # the TPU's kernel, chosen on this CPU host
    memory = result["memory"]
    assert 0 < memory["arguments"] <= memory["peak"] <= result["hbm_bytes"]
    assert memory["aliased"] > 0                # the state is donated
    assert result["flops_per_step_model"] == pytest.approx(3 * analytic_forward_flops(tiny_cfg()) * 8)
    assert result["flops_per_step_compiled"] > 0
    roofline = result["roofline"]
    assert roofline["bound"] in ("compute", "HBM") and 0 < roofline["mfu"] <= 1
    assert result["clips_per_second"] == pytest.approx(8 / roofline["step_seconds"])
    # Data parallel: each step all-reduces every float32 gradient once (plus a few metrics).
    reduced = result["collectives"]["all-reduce"]["bytes"]
    assert gradient_bytes() <= reduced < 1.1 * gradient_bytes()
    assert result["input"]["needed_per_host"] == pytest.approx(8 / roofline["step_seconds"])
    assert result["compile_seconds"] > 0


def test_v4_megacore_with_fsdp_shards_the_state(tmp_path):
    run, result = plan(tmp_path, "--topology", "v4:2x2x1", "--per-chip-batch", "2", "--config.mesh.fsdp=4")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert result["chip"] == "TPU v4" and result["mesh"] == {"slice": 1, "data": 1, "fsdp": 4}
    # Parameters and both Adam moments (3 x the gradient bytes) are split over 4 chips.
    assert result["memory"]["arguments"] < 3 * gradient_bytes() / 2
    assert result["collectives"]["all-gather"]["count"] > 0          # parameters gathered for use


def test_two_slices(tmp_path):
    run, result = plan(tmp_path, "--topology", "2xv5e:2x2", "--per-chip-batch", "2")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert (result["chips"], result["slices"], result["hosts"]) == (8, 2, 2)
    assert result["mesh"] == {"slice": 2, "data": 4, "fsdp": 1} and result["global_batch"] == 16


def test_h100_target(tmp_path):
    run, result = plan(tmp_path, "--topology", "h100x8", "--per-chip-batch", "2")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert result["chip"] == "NVIDIA H100 SXM5 80GB" and result["mesh"]["data"] == 8
    assert result["attention"] == "triton"      # the GPU's fused kernel, chosen on this CPU host
    assert result["flops_per_step_compiled"] is None and result["roofline"]["bound"] == "peak"
    assert 0 < result["memory"]["peak"] <= result["usable_bytes"] < result["hbm_bytes"]


def test_a_step_that_does_not_fit_is_one_error_line_and_exit_1(tmp_path):
    run, result = plan(tmp_path, "--topology", "v5e:2x2", "--per-chip-batch", "100000")
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the step does not fit: it needs ")
    assert "available" in lines[0]
    assert result["fits"] is False and result["out_of_memory"] in lines[0]


def test_fsdp_mesh_on_a_torus_whose_axes_it_splits():
    """fsdp=2 on v5e-256 (a 16x16 torus) makes data=128, which no single physical axis or product
    of axes gives: the mesh takes part of an axis instead of refusing."""
    script = ("from mmae_jax.plan.topology import parse_topology, target_devices\n"
              "from mmae_jax.train.mesh import create_mesh\n"
              "mesh = create_mesh(fsdp=2, devices=target_devices(parse_topology('v5e-256')))\n"
              "print(dict(mesh.shape), len({d.id for d in mesh.devices.flat}))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "JAX_"))}
    env["PYTHONPATH"] = str(ROOT)
    run = subprocess.run([str(AOT_PYTHON), "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] == "{'slice': 1, 'data': 128, 'fsdp': 2} 256"
