"""The Colab notebooks run top to bottom (SMALL settings: no GPU here) on a
fresh kernel, and are committed without outputs."""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "colab").glob("*.ipynb"))


def test_the_four_notebooks_exist():
  assert {p.name for p in NOTEBOOKS} == {"quickstart.ipynb", "latent_geometry.ipynb",
                                         "document_topics.ipynb", "reproduce_tables.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_and_open_with_a_colab_badge(path):
  notebook = nbformat.read(path, as_version=4)
  nbformat.validate(notebook)
  for cell in notebook.cells:
    if cell.cell_type == "code":
      assert not cell.outputs and cell.execution_count is None, cell.source[:60]
  first, last = notebook.cells[0], notebook.cells[-1]
  assert "colab.research.google.com" in first.source and f"colab/{path.name}" in first.source
  assert last.cell_type == "markdown" and "Where next" in last.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_top_to_bottom(path, tmp_path):
  """Executed in an empty folder (runs, exports and figures land there)."""
  notebook = nbformat.read(path, as_version=4)
  client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}})
  client.execute()  # Raises CellExecutionError, naming the cell, on any error.
  errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs
            if o.output_type == "error"]
  assert not errors
  images = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs
            if "image/png" in o.get("data", {})]
  assert images, "every notebook shows at least one picture"
