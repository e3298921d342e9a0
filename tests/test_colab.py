"""The Colab notebook runs top to bottom on CPU in its quick setting, is what its generator
writes, and its install cell installs mmae_jax from a local clone into a fresh environment."""

import subprocess
from pathlib import Path

import nbformat
import pytest

from fresh_venv import fresh_venv, site_packages

ROOT = Path(__file__).resolve().parents[1]
COLAB = ROOT / "colab"
NOTEBOOK = COLAB / "mmae_jax_demo.ipynb"

pytestmark = pytest.mark.xdist_group("colab")


def test_committed_notebook_matches_its_generator():
    from colab import make_notebook

    committed = nbformat.read(NOTEBOOK, as_version=4)
    generated = make_notebook.build()
    assert [(c.cell_type, c.source) for c in committed.cells] == [(c.cell_type, c.source) for c in generated.cells], \
        "colab/mmae_jax_demo.ipynb is stale: run `python colab/make_notebook.py`"


@pytest.mark.slow
def test_notebook_executes_in_its_quick_setting(tmp_path):
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = next(i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
    # Like papermill: a cell after the parameters sets the values of this run.
    notebook.cells.insert(parameters + 1, nbformat.v4.new_code_cell(
        f"QUICK = True\nDATASET = 'synthetic'\nRUNTIME = 'cpu'\nWORK_DIR = {str(tmp_path / 'work')!r}"))
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    work = tmp_path / "work"
    for picture in ("fusion.png", "explain.png"):
        assert (work / picture).stat().st_size > 10_000, picture
    runs = list(work.glob("run_synthetic_*"))
    assert len(runs) == 1 and (runs[0] / "training_curves.png").is_file() and (runs[0] / "confusion_test.png").is_file()
    printed = "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))
    assert "relevance on faces" in printed and "jax " in printed


def _cell(notebook, tag: str) -> str:
    return next(cell.source for cell in notebook.cells if tag in cell.metadata.get("tags", []))


def test_form_fields_and_badge_cell():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = _cell(notebook, "parameters")
    for field in ("QUICK", "DATASET", "STRATEGY", "RUNTIME", "RAVDESS_DIR", "SOURCE", "WORK_DIR"):
        assert f"\n{field} = " in parameters and "#@param" in parameters.split(f"\n{field} = ")[1].splitlines()[0]
    sources = "".join(cell.source for cell in notebook.cells)
    assert 'drive.mount("/content/drive")' in sources and "tensorflow-cpu" not in sources


@pytest.mark.slow
def test_install_cell_installs_from_a_local_clone_into_a_fresh_environment(tmp_path):
    """The install cell, run by a fresh interpreter with SOURCE = file:// clone: mmae_jax lands in that
    environment, and the TensorFlow present there (as on Colab) is kept."""
    clone = tmp_path / "clone"
    # a full clone: pip fetches from it, which a shallow one refuses
    subprocess.run(["git", "clone", "--quiet", f"file://{ROOT}", str(clone)], check=True)
    python = fresh_venv(tmp_path / "venv", with_pip=True, fake_tensorflow=True)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    script = "\n\n".join([_cell(notebook, "parameters"), f"SOURCE = {'file://' + str(clone)!r}",
                           _cell(notebook, "install")])
    (tmp_path / "cells.py").write_text(script)
    tensorflow_record = next(site_packages(python).glob("tensorflow-*.dist-info")) / "METADATA"
    before = tensorflow_record.read_text()
    out = subprocess.run([str(python), "cells.py"], cwd=tmp_path, capture_output=True, text=True, timeout=900,
                         env=fresh_venv.environment())
    assert out.returncode == 0, out.stderr[-3000:]
    installed = site_packages(python) / "mmae_jax"
    assert f"from {installed}" in out.stdout
    assert tensorflow_record.read_text() == before                  # TensorFlow not reinstalled
    version = subprocess.run([str(python.parent / "mmae-jax"), "--version"], capture_output=True, text=True,
                             env=fresh_venv.environment(), cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("mmae-jax ")
