"""The quickstart notebook runs top to bottom against the local mode, and says what it should."""

import nbformat
import pytest
from nbclient import NotebookClient

from tests.helpers import REPO

pytestmark = pytest.mark.e2e
NOTEBOOK = REPO / "examples" / "notebooks" / "quickstart.ipynb"


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_quickstart_executes_and_shows_results(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGEBUILD_NOTEBOOK_PROJECT", str(tmp_path / "wine"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    texts, images = [], 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", output
            data = output.get("data", {})
            texts.append(data.get("text/plain", "") + output.get("text", ""))
            images += "image/png" in data
    text = "\n".join(texts)
    assert "Build #1 SUCCEEDED v1" in text
    assert "Build #2 SUCCEEDED v2" in text
    assert "'predictions'" in text and "class_0" in text  # the endpoint answered
    assert "training.hyperparameters.max-depth: 6 -> 3" in text
    assert "wine-classifier serves v2 (build #2)" in text
    assert images == 2  # the step chart and the comparison chart
    assert (tmp_path / "wine" / ".sagebuild" / "ledger.db").exists()
