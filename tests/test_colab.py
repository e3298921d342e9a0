"""The Colab notebook runs top to bottom on CPU in its quick setting and is what its generator
writes; its first cell says when the repository address is not set; its install cell installs
mmae_jax from a local clone into a fresh environment, keeping the environment's jax, jaxlib and
TensorFlow, and stops with one line when there is nothing to install from."""

import subprocess
from importlib import metadata
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


def test_the_first_cell_says_when_the_repository_address_is_not_set():
    """GITHUB_REPOSITORY is the one place the address goes: empty, the first cell says so and SOURCE
    has no default; set, the badge and the default SOURCE come from it."""
    from colab import make_notebook

    unpublished = make_notebook.build("")
    assert unpublished.cells[0].source.startswith("> **The public address of this repository is not set yet** "
                                                  "(`GITHUB_REPOSITORY` in\n> `colab/make_notebook.py` is empty)")
    assert '\nSOURCE = ""  #@param' in _cell(unpublished, "parameters")
    assert "github.com" not in "".join(cell.source for cell in unpublished.cells)
    published = make_notebook.build("someone/mmae_jax")
    assert published.cells[0].source.startswith(
        "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google"
        ".com/github/someone/mmae_jax/blob/main/colab/mmae_jax_demo.ipynb)")
    assert "not set yet" not in published.cells[0].source
    assert '\nSOURCE = "https://github.com/someone/mmae_jax.git"  #@param' in _cell(published, "parameters")


def _run_cells(python: Path, tmp_path: Path, *sources: str, in_ipython: bool = False) -> subprocess.CompletedProcess:
    """``sources`` run one after the other by ``python`` (as one IPython cell with ``in_ipython``, as
    Colab shows it; exit status 3 when the cell raised)."""
    (tmp_path / "cells.py").write_text("\n\n".join(sources))
    command = ["cells.py"] if not in_ipython else ["-c", (
        "import sys, pathlib\nfrom IPython.core.interactiveshell import InteractiveShell\n"
        "ok = InteractiveShell.instance().run_cell(pathlib.Path('cells.py').read_text()).success\n"
        "sys.exit(0 if ok else 3)")]
    return subprocess.run([str(python), *command], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env=fresh_venv.environment())


@pytest.mark.slow
def test_install_cell_without_source_stops_with_one_line(tmp_path):
    """The committed notebook (no address yet) in a runtime without mmae_jax: the install cell stops
    with the message, not a traceback."""
    python = fresh_venv(tmp_path / "venv")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    out = _run_cells(python, tmp_path, _cell(notebook, "parameters"), _cell(notebook, "install"), in_ipython=True)
    assert out.returncode == 3, out.stdout[-2000:] + out.stderr[-2000:]
    assert out.stdout.strip() == ("error: SOURCE is empty (the repository's public address is not set yet): set it "
                                  "in the Choices cell to a git URL of mmae_jax, a folder, or an uploaded .zip / "
                                  ".tar.gz, and run again"), out.stdout[-2000:]


def _files(site: Path, names: tuple[str, ...]) -> dict[str, tuple]:
    """Version and (path, size, mtime) of every file of the distributions ``names`` installed in ``site``."""
    found = {}
    for dist in metadata.distributions(path=[str(site)]):
        if dist.metadata["Name"] in names:
            files = sorted((str(f), (s := Path(dist.locate_file(f)).stat()).st_size, s.st_mtime_ns)
                           for f in dist.files)
            found[dist.metadata["Name"]] = (dist.version, files)
    return found


@pytest.mark.slow
def test_install_cell_installs_from_a_local_clone_and_keeps_the_runtimes_jax(tmp_path):
    """The install cell, run by a fresh interpreter with SOURCE = file:// clone, where jax and jaxlib
    are pip-installed first (standing in for Colab's accelerator JAX) and a TensorFlow record is
    present: mmae_jax lands in that environment, jax, jaxlib and TensorFlow stay as they were (same
    versions, same files), and the cell names the JAX it kept and the backend that JAX finds."""
    clone = tmp_path / "clone"
    # a full clone: pip fetches from it, which a shallow one refuses
    subprocess.run(["git", "clone", "--quiet", f"file://{ROOT}", str(clone)], check=True)
    runtime_jax = ("jax", "jaxlib")
    python = fresh_venv(tmp_path / "venv", fake_tensorflow=True, installed=runtime_jax)
    site = site_packages(python)
    jax_before = _files(site, runtime_jax)
    assert set(jax_before) == set(runtime_jax)
    tensorflow_record = next(site.glob("tensorflow-*.dist-info")) / "METADATA"
    tensorflow_before = tensorflow_record.read_text()
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    out = _run_cells(python, tmp_path, _cell(notebook, "parameters"), f"SOURCE = {'file://' + str(clone)!r}",
                     _cell(notebook, "install"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"mmae_jax 0.1.0 from {site / 'mmae_jax'}\n" in out.stdout
    assert _files(site, runtime_jax) == jax_before                  # jax and jaxlib not reinstalled
    assert tensorflow_record.read_text() == tensorflow_before       # TensorFlow not reinstalled
    version = metadata.version("jax")
    assert f"JAX: jax {version}, jaxlib {version} (the runtime's, kept)\n" in out.stdout
    assert "JAX backend found: cpu\n" in out.stdout
    version = subprocess.run([str(python.parent / "mmae-jax"), "--version"], capture_output=True, text=True,
                             env=fresh_venv.environment(), cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("mmae-jax ")
