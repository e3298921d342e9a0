"""The Colab notebook runs top to bottom on CPU in its quick setting, and is what its generator writes."""

import sys
from pathlib import Path

import nbformat
import pytest

COLAB = Path(__file__).resolve().parents[1] / "colab"
NOTEBOOK = COLAB / "mmae_jax_demo.ipynb"

pytestmark = pytest.mark.xdist_group("colab")


def test_committed_notebook_matches_its_generator():
    sys.path.insert(0, str(COLAB))
    import make_notebook

    committed = nbformat.read(NOTEBOOK, as_version=4)
    generated = make_notebook.build()
    assert [(c.cell_type, c.source) for c in committed.cells] == [(c.cell_type, c.source) for c in generated.cells], \
        "colab/mmae_jax_demo.ipynb is stale: run `python colab/make_notebook.py`"


def test_notebook_executes_in_its_quick_setting(tmp_path):
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = next(i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
    # Like papermill: a cell after the parameters sets the values of this run.
    notebook.cells.insert(parameters + 1, nbformat.v4.new_code_cell(
        f"QUICK = True\nRAVDESS_DIR = ''\nWORK_DIR = {str(tmp_path / 'work')!r}"))
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    work = tmp_path / "work"
    for picture in ("fusion.png", "explain.png"):
        assert (work / picture).stat().st_size > 10_000, picture
    runs = list(work.glob("run_synthetic_*"))
    assert len(runs) == 1 and (runs[0] / "training_curves.png").is_file() and (runs[0] / "confusion_test.png").is_file()
    printed = "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))
    assert "relevance on faces" in printed and "jax " in printed
