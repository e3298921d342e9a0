"""The built wheel, installed into a fresh environment without this checkout on the path, ships
the configs: ``--config NAME[:ARGS]`` resolves the installed ones."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fresh_venv import environment, fresh_venv, site_packages

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``mmae-jax`` of a fresh environment holding the wheel built from a copy of this checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    top_level = {".git", ".venv", ".venv-beam", ".venv-aot", "build", "dist", "workdirs", "data", ".pytest_cache"}
    shutil.copytree(ROOT, source, ignore=lambda folder, names: [
        name for name in names if (Path(folder) == ROOT and name in top_level)
        or name == "__pycache__" or name.endswith(".egg-info")])
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp / "dist"), str(source)], check=True, cwd=tmp)
    wheel = next((tmp / "dist").glob("mmae_jax-*.whl"))
    python = fresh_venv(tmp / "venv")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    str(wheel)], check=True, cwd=tmp)
    shutil.rmtree(source)
    return python


def _run(python: Path, *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(python.parent / "mmae-jax"), *args], cwd=tmp_path, env=environment(),
                          capture_output=True, text=True, timeout=300)


def test_the_package_comes_from_the_environment_not_the_checkout(installed, tmp_path):
    out = subprocess.run([str(installed), "-c", "import mmae_jax, sys; print(mmae_jax.__file__)"], cwd=tmp_path,
                         env=environment(), capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()).is_relative_to(site_packages(installed))


def test_named_config_resolves_to_the_installed_file(installed, tmp_path):
    out = _run(installed, "train", "--workdir", "unused", "--config", "ravdess:strategy=ffls,fold=1",
               "--config.batch_size=4", "--print-config", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    config = json.loads(out.stdout)
    assert (config["data"]["dataset"], config["data"]["strategy"], config["batch_size"]) == ("ravdess", "ffls", 4)
    where = subprocess.run([str(installed), "-c", "from mmae_jax.cli.runtime import resolve_config_spec; "
                            "print(resolve_config_spec('demo:strategy=sfas'))"], cwd=tmp_path, env=environment(),
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where == f"{site_packages(installed) / 'mmae_jax' / 'configs' / 'demo.py'}:strategy=sfas"


def test_help_lists_the_shipped_configs(installed, tmp_path):
    out = _run(installed, "train", "--help", tmp_path=tmp_path)
    assert out.returncode == 0 and "crema_d, demo, iemocap, pretrain_demo, pretrain_ravdess, ravdess" in out.stdout


def test_the_gpu_target_descriptions_are_shipped(installed, tmp_path):
    out = subprocess.run([str(installed), "-c", "from mmae_jax.plan.topology import gpu_target_config; "
                          "print(gpu_target_config('a100'))"], cwd=tmp_path, env=environment(),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'device_description_str: "NVIDIA A100-SXM4-80GB"' in out.stdout
