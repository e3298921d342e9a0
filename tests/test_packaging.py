"""What the distribution ships, and the one name of the preprocessing package everywhere.

The repository's data_prep/ folder is the package ``mmae_jax.data_prep`` in a checkout
(``PYTHONPATH=.``), in an editable install and in the wheel, and it can not be imported as
``data_prep``. The sdist carries the license and ``constraints.txt``; the wheel built from that
sdist installs nothing but ``mmae_jax`` into site-packages, with the configs and the
preprocessing inside, and ``--config NAME[:ARGS]`` resolves the installed configs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from fresh_venv import environment, fresh_venv, site_packages

ROOT = Path(__file__).resolve().parents[1]

# Run by the interpreter under test: where the preprocessing code comes from, and what
# `import data_prep` does there.
WHICH_DATA_PREP = """\
import sys
from mmae_jax.data_prep.media import errors
from mmae_jax.data_prep.registry import builder_class
print(errors.__file__)
print(builder_class("synthetic").__module__)
try:
    import data_prep
    print("imported", data_prep.__file__)
except ImportError as error:
    print("refused:", error)
print(sorted(name for name in sys.modules if name.split(".")[0] == "data_prep"))
"""


def _which_data_prep(python: Path | str, cwd: Path, **env: str) -> list[str]:
    out = subprocess.run([str(python), "-c", WHICH_DATA_PREP], cwd=cwd, env={**environment(), **env},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.splitlines()


def test_the_checkout_data_prep_folder_is_the_package_mmae_jax_data_prep():
    import mmae_jax.data_prep

    assert mmae_jax.data_prep.__path__ == [str(ROOT / "data_prep")]
    assert mmae_jax.data_prep.__spec__.name == "mmae_jax.data_prep"


def test_in_a_checkout_data_prep_has_one_name(tmp_path):
    """``PYTHONPATH=.``: the modules come from data_prep/, and ``import data_prep`` is refused
    (a second name would make a second copy of every module and error class)."""
    errors_file, builder_module, data_prep, loaded = _which_data_prep(sys.executable, tmp_path,
                                                                      PYTHONPATH=str(ROOT))
    assert errors_file == str(ROOT / "data_prep" / "media" / "errors.py")
    assert builder_module == "mmae_jax.data_prep.synthetic.synthetic_dataset_builder"
    assert data_prep.startswith("refused: the repository's data_prep/ folder is the package mmae_jax.data_prep")
    assert loaded == "[]"


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """A copy of this checkout (``source``), its sdist, and the wheel pip builds from that sdist."""
    tmp = tmp_path_factory.mktemp("dists")
    source = tmp / "source"
    top_level = {".git", ".venv", ".venv-beam", ".venv-aot", "build", "dist", "workdirs", "data", ".pytest_cache"}
    shutil.copytree(ROOT, source, ignore=lambda folder, names: [
        name for name in names if (Path(folder) == ROOT and name in top_level)
        or name == "__pycache__" or name.endswith(".egg-info")])
    sdist = subprocess.run([sys.executable, "-c", "from setuptools import build_meta; "
                            f"print(build_meta.build_sdist({str(tmp / 'sdist')!r}))"],
                           cwd=source, capture_output=True, text=True, check=True).stdout.splitlines()[-1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp / "dist"), str(tmp / "sdist" / sdist)], check=True, cwd=tmp)
    return {"source": source, "sdist": tmp / "sdist" / sdist, "wheel": next((tmp / "dist").glob("mmae_jax-*.whl"))}


@pytest.fixture(scope="module")
def installed(dists, tmp_path_factory) -> Path:
    """The python of a fresh environment holding the wheel."""
    python = fresh_venv(tmp_path_factory.mktemp("wheel") / "venv")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    str(dists["wheel"])], check=True)
    return python


@pytest.mark.slow
def test_the_wheel_installs_only_the_mmae_jax_package(dists):
    names = zipfile.ZipFile(dists["wheel"]).namelist()
    assert {name.split("/")[0] for name in names} == {"mmae_jax", "mmae_jax-0.1.0.dist-info"}
    assert {"mmae_jax/data_prep/__init__.py", "mmae_jax/data_prep/media/errors.py",
            "mmae_jax/data_prep/ravdess/ravdess_dataset_builder.py", "mmae_jax/configs/demo.py"} <= set(names)
    wheel = zipfile.ZipFile(dists["wheel"])
    assert wheel.read("mmae_jax-0.1.0.dist-info/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
    assert re.search(r"^License(-Expression)?: Apache-2.0$", wheel.read("mmae_jax-0.1.0.dist-info/METADATA").decode(),
                     re.MULTILINE)


def test_the_license_is_the_apache_2_text_with_the_copyright_line():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("Copyright ") and "The mmae_jax Authors" in text.splitlines()[0]
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 200


@pytest.mark.slow
def test_the_sdist_carries_the_license_and_the_tested_versions(dists):
    top = dists["sdist"].name.removesuffix(".tar.gz")
    with tarfile.open(dists["sdist"]) as sdist:
        names = set(sdist.getnames())
        for name in ("LICENSE", "constraints.txt"):
            assert f"{top}/{name}" in names, f"the sdist lacks {name}"
            assert sdist.extractfile(f"{top}/{name}").read() == (ROOT / name).read_bytes()


@pytest.mark.slow
def test_the_installed_wheel_has_the_preprocessing_under_mmae_jax_only(installed, tmp_path):
    errors_file, builder_module, data_prep, loaded = _which_data_prep(installed, tmp_path)
    assert errors_file == str(site_packages(installed) / "mmae_jax" / "data_prep" / "media" / "errors.py")
    assert builder_module == "mmae_jax.data_prep.synthetic.synthetic_dataset_builder"
    assert data_prep == "refused: No module named 'data_prep'" and loaded == "[]"


@pytest.mark.slow
def test_the_editable_install_maps_the_folder_to_the_same_name(dists, tmp_path):
    """``pip install -e .`` (the Makefile's install), used from outside the checkout."""
    python = fresh_venv(tmp_path / "venv")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "-e", str(dists["source"])], check=True, cwd=tmp_path)
    errors_file, builder_module, _, loaded = _which_data_prep(python, tmp_path)
    assert errors_file == str(dists["source"] / "data_prep" / "media" / "errors.py")
    assert builder_module == "mmae_jax.data_prep.synthetic.synthetic_dataset_builder" and loaded == "[]"


def _run(python: Path, *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(python.parent / "mmae-jax"), *args], cwd=tmp_path, env=environment(),
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_the_package_comes_from_the_environment_not_the_checkout(installed, tmp_path):
    out = subprocess.run([str(installed), "-c", "import mmae_jax, sys; print(mmae_jax.__file__)"], cwd=tmp_path,
                         env=environment(), capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()).is_relative_to(site_packages(installed))


@pytest.mark.slow
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


@pytest.mark.slow
def test_help_lists_the_shipped_configs(installed, tmp_path):
    out = _run(installed, "train", "--help", tmp_path=tmp_path)
    assert out.returncode == 0 and "crema_d, demo, iemocap, pretrain_demo, pretrain_ravdess, ravdess" in out.stdout


@pytest.mark.slow
def test_the_gpu_target_descriptions_are_shipped(installed, tmp_path):
    out = subprocess.run([str(installed), "-c", "from mmae_jax.plan.topology import gpu_target_config; "
                          "print(gpu_target_config('a100'))"], cwd=tmp_path, env=environment(),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'device_description_str: "NVIDIA A100-SXM4-80GB"' in out.stdout
