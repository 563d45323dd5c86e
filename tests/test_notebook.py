"""The example notebook runs top to bottom, so it never rots, and uses only the installed
package, so it works from a wheel install too."""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "evaluate_retrieval.ipynb"


def code() -> str:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")


def test_notebook_uses_no_repository_relative_paths() -> None:
    source = code()
    assert "parents[" not in source and "__file__" not in source
    assert "corpus/" not in source and '"corpus"' not in source
    assert "evaluate(retriever, metrics=metrics)" in source  # the bundled set by default


def test_notebook_calibrates_from_the_report_without_re_encoding() -> None:
    assert "calibrate(retriever, report," in code()


@pytest.mark.slow
def test_evaluation_notebook_executes_without_errors(monkeypatch) -> None:
    monkeypatch.delenv("WALLETFAQ_CACHE_DIR", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    assert "recall@1" in text and "in-domain queries miss at rank 1" in text
    assert "ranking metrics over the" in text and "out-of-domain refused" in text
    assert "今天北京天气怎么样" in text and "-> fallback:" in text
