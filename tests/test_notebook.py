"""The example notebooks run top to bottom, so they never rot, and use only the installed
package, so they work from a wheel install too."""

from __future__ import annotations

import re
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


def executed_text(path: Path) -> str:
    """Run the notebook top to bottom (the user cache, as a reader's would be); assert no cell
    failed; return the text of every output."""
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(
        notebook,
        timeout=1200,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    # no stray third-party output: tqdm's notebook warning without ipywidgets, transformers'
    # own loading bar
    assert "IProgress not found" not in text and "TqdmWarning" not in text
    assert "Loading weights" not in text
    return text


@pytest.mark.slow
def test_evaluation_notebook_executes_without_errors(monkeypatch) -> None:
    monkeypatch.delenv("WALLETFAQ_CACHE_DIR", raising=False)
    text = executed_text(NOTEBOOK)
    assert "recall@1" in text and "in-domain queries miss at rank 1" in text
    assert "ranking metrics over the" in text and "out-of-domain refused" in text
    assert "今天北京天气怎么样" in text and "-> fallback:" in text


LEVERS = NOTEBOOK.parent / "improve_quality.ipynb"


def test_levers_notebook_uses_no_repository_relative_paths() -> None:
    notebook = nbformat.read(LEVERS, as_version=4)
    source = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert "parents[" not in source and "__file__" not in source and "corpus/" not in source


@pytest.mark.slow
def test_levers_notebook_executes_and_compares_every_option(monkeypatch) -> None:
    monkeypatch.delenv("WALLETFAQ_CACHE_DIR", raising=False)
    text = executed_text(LEVERS)
    for option in ("dense (e5-small)", "lexical (BM25)", "hybrid (e5 + 0.2 BM25)", "ensemble"):
        assert option in text
    assert "exact-term" in text and "p50 ms" in text and "adapter + BM25" in text


LOOP = NOTEBOOK.parent / "traffic_loop.ipynb"


def test_traffic_loop_notebook_uses_no_repository_relative_paths_and_has_no_outputs() -> None:
    notebook = nbformat.read(LOOP, as_version=4)
    cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    source = "\n".join(cell.source for cell in cells)
    assert "parents[" not in source and "__file__" not in source and "benchmarks/" not in source
    assert "walletfaq.gaps(store" in source and "store.publish(" in source
    assert all(not cell.outputs and cell.execution_count is None for cell in cells)


@pytest.mark.slow
def test_traffic_loop_notebook_runs_the_loop_and_answers_held_out_questions(monkeypatch) -> None:
    monkeypatch.delenv("WALLETFAQ_CACHE_DIR", raising=False)
    text = executed_text(LOOP)
    assert "proposals recorded" in text and "(new_entry, open)" in text
    assert "staged put of entry gap-" in text and "(publish): 1 entry changed" in text
    answered = re.search(r"answered by the new entry gap-\w+: (\d+) of (\d+) \(before: 0\)", text)
    assert answered is not None and int(answered.group(1)) >= 1
    assert "gap_clusters" in text and "wrote report.html" in text
