"""What the compiled training step does on a mesh, read from its optimised HLO.

``compiled_step_probe.py`` compiles the demo config's step in a fresh process, for 8 simulated
CPU devices or (with libtpu, in the ``.venv-aot`` environment that ``make install`` builds) for a
TPU topology from this CPU host, and lists the step's collective-permute / all-to-all operations
and any ``[B, heads, N, N]`` attention-score buffer.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
ROOT = TESTS.parent
AOT_PYTHON = Path(os.environ.get("MMAE_AOT_PYTHON", ROOT / ".venv-aot" / "bin" / "python"))
MIXING = ("optim.mixup_alpha=0.8", "optim.cutmix_alpha=1.0")


def probe(python: Path, target: str, *overrides: str) -> dict:
    assert python.exists(), f"{python} is missing: `make install` builds the .venv-aot environment"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               ALLOW_MULTIPLE_LIBTPU_LOAD="1", JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    done = subprocess.run([str(python), str(TESTS / "compiled_step_probe.py"), target, *overrides],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def clip_movements(report: dict) -> list:
    """Collectives whose operand is a batch of clips (``[b, T, S, S, 3]``)."""
    clip = ",".join(str(n) for n in report["clip"])
    return [op for op in report["collectives"] if f",{clip}]" in op[1]]


@pytest.mark.slow
def test_mixup_and_cutmix_move_no_clip_between_devices():
    report = probe(Path(sys.executable), "cpu:8", *MIXING)
    assert report["batch"] % 8 == 0
    assert clip_movements(report) == [], report["collectives"]


@pytest.mark.slow
def test_tpu_step_uses_the_fused_kernel_chosen_by_the_target_and_holds_no_score_matrix():
    fused = probe(AOT_PYTHON, "v5e:2x2", "data.num_frames=32", *MIXING)
    assert fused["host_backend"] == "cpu" and fused["attention"] == "splash"
    assert fused["score_buffers"] == []
    assert clip_movements(fused) == [], fused["collectives"]
    assert fused["clip_branches"] == [], fused["clip_branches"]
    # The same step with XLA's attention materialises the scores: the check sees them.
    plain = probe(AOT_PYTHON, "v5e:2x2", "data.num_frames=32", "model.attention_impl=xla")
    assert plain["score_buffers"], plain


@pytest.mark.slow
def test_mixup_and_cutmix_cost_the_tpu_step_one_elementwise_pass():
    """Mixing is one fused pass over the clips: no branch holding whole batches, and the step's
    temporaries and memory traffic stay near those of the same step without mixing."""
    mixed = probe(AOT_PYTHON, "v5e:2x2", *MIXING)
    plain = probe(AOT_PYTHON, "v5e:2x2")
    assert mixed["clip_branches"] == [], mixed["clip_branches"]
    assert mixed["temp_bytes"] <= 1.25 * plain["temp_bytes"], (mixed["temp_bytes"], plain["temp_bytes"])
    assert mixed["bytes_accessed"] <= 1.25 * plain["bytes_accessed"], (mixed["bytes_accessed"], plain["bytes_accessed"])
