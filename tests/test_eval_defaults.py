"""evaluate(r), calibrate(r) and compare({...}) use the bundled evaluation set by default, found
through the package data (not the working directory), so they work from a wheel install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import walletfaq.data.queries
from walletfaq import FAQRetriever, bundled_queries_path, calibrate, compare, evaluate
from walletfaq.quality.calibration import CalibrationWarning

from .test_evaluate import QUERIES


@pytest.fixture
def bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand the tiny query set in for the bundled one (its gold ids fit the tiny corpus)."""
    path = tmp_path / "queries.jsonl"
    path.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in QUERIES), "utf-8")
    monkeypatch.setattr(walletfaq.data.queries, "bundled_queries_path", lambda: path)
    return path


@pytest.fixture
def retriever(tiny_corpus, encoder) -> FAQRetriever:
    return FAQRetriever.build(tiny_corpus, model=encoder)


def test_evaluate_without_queries_uses_the_bundled_set(retriever, bundled: Path) -> None:
    assert evaluate(retriever).metrics == evaluate(retriever, bundled).metrics


def test_calibrate_without_queries_uses_the_bundled_set(retriever, bundled: Path) -> None:
    with pytest.warns(CalibrationWarning):
        default = calibrate(retriever, target_precision=0.9)
    with pytest.warns(CalibrationWarning):
        explicit = calibrate(retriever, bundled, target_precision=0.9)
    assert default == explicit


def test_compare_without_queries_uses_the_bundled_set(retriever, bundled: Path) -> None:
    frame = compare({"flat": retriever})
    assert frame.loc["flat", "recall@1"] == evaluate(retriever, bundled).metrics["recall@1"]


def test_the_bundled_set_is_found_from_any_working_directory(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(walletfaq.__file__).parents[1])}
    found = subprocess.run(
        [sys.executable, "-c", "import walletfaq; print(walletfaq.bundled_queries_path())"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(found) == bundled_queries_path() and Path(found).is_file()
