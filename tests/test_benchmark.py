"""The latency benchmark (``walletfaq.bench``): its layout, its CLI and its sections.

The quick end-to-end run is a smoke test: files written, every section present and positive.
No timing thresholds: timings depend on the machine and its load.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from walletfaq import cli
from walletfaq.bench import (
    QUICK_SIZES,
    MissingDependencyError,
    check_dependencies,
    default_out_dir,
    run_benchmark,
    scale,
    to_markdown,
)
from walletfaq.bench.questions import embed_questions, load_questions
from walletfaq.errors import WalletFAQError

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = (
    "end_to_end",
    "cache_hit",
    "scale",
    "synthetic_search",
    "threads",
    "throughput",
    "lexical",
    "cold_start",
)


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


# --------------------------------------------------------------------------- layout
def test_importing_walletfaq_does_not_import_the_benchmark() -> None:
    code = (
        "import sys, walletfaq\n"
        "from walletfaq import FAQRetriever\n"
        "print([m for m in sys.modules if m.startswith('walletfaq.bench')])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_old_benchmark_module_is_gone() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("walletfaq.benchmark")


@pytest.mark.parametrize("name", SECTIONS)
def test_each_section_is_a_module_that_renders_itself(name: str) -> None:
    module = importlib.import_module(f"walletfaq.bench.{name}")
    assert callable(module.render)
    assert module.__doc__


def test_committed_report_renders_with_the_same_figures() -> None:
    results = ROOT / "benchmarks" / "results"
    if not (results / "latency.json").is_file():
        pytest.skip("no committed latency report")
    report = json.loads((results / "latency.json").read_text(encoding="utf-8"))
    rendered = to_markdown(report).splitlines()
    committed = (results / "latency.md").read_text(encoding="utf-8").splitlines()
    table_rows = [line for line in committed if line.startswith("|")]
    assert table_rows and all(line in rendered for line in table_rows)
    for heading in ("## 1.", "## 2.", "## 3.", "## 4.", "## 5.", "## 6.", "## 7."):
        assert any(line.startswith(heading) for line in rendered), heading
    assert "Skipped: not measured." in rendered  # no real-question section in that report


# --------------------------------------------------------------------------- optional deps
def test_missing_extra_raises_one_line_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "jieba", None)
    with pytest.raises(MissingDependencyError) as info:
        check_dependencies()
    message = str(info.value)
    assert isinstance(info.value, WalletFAQError)
    assert "jieba" in message and 'pip install "walletfaq[bench]"' in message
    assert "\n" not in message


def test_dependencies_present_pass() -> None:
    check_dependencies()


def test_run_benchmark_checks_dependencies_before_any_work(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "bm25s", None)
    out = tmp_path / "never"
    with pytest.raises(MissingDependencyError, match="bm25s"):
        run_benchmark(quick=True, out_dir=out)
    assert not out.exists()


def test_cli_bench_without_extra_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import walletfaq.bench as bench

    def must_not_run(**_: Any) -> dict[str, Any]:
        raise AssertionError("the benchmark started without its dependencies")

    monkeypatch.setattr(bench, "run_benchmark", must_not_run)
    monkeypatch.setitem(sys.modules, "jieba", None)
    assert cli.main(["bench", "--quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert 'pip install "walletfaq[bench]"' in err


# --------------------------------------------------------------------------- output folder
def test_default_out_dir_is_a_new_timestamped_folder(tmp_path: Path) -> None:
    now = datetime(2026, 1, 2, 3, 4, 5)
    first = default_out_dir(tmp_path, now)
    assert first == tmp_path / "walletfaq-bench-20260102-030405"
    first.mkdir()
    assert default_out_dir(tmp_path, now) == tmp_path / "walletfaq-bench-20260102-030405-2"


def _fake_benchmark(calls: list[Path]) -> Any:
    def run(*, out_dir: Path, **_: Any) -> dict[str, Any]:
        calls.append(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "latency.md").write_text("# report\n", encoding="utf-8")
        return {}

    return run


def test_cli_bench_writes_to_a_new_folder_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import walletfaq.bench as bench

    calls: list[Path] = []
    monkeypatch.setattr(bench, "run_benchmark", _fake_benchmark(calls))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    assert cli.main(["bench", "--quick"]) == 0
    (out,) = calls
    assert out.parent == tmp_path and out.name.startswith("walletfaq-bench-")
    assert not any((tmp_path / "benchmarks" / "results").iterdir())
    assert "# report" in capsys.readouterr().out


def test_cli_bench_out_writes_where_asked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import walletfaq.bench as bench

    calls: list[Path] = []
    monkeypatch.setattr(bench, "run_benchmark", _fake_benchmark(calls))
    assert cli.main(["bench", "--quick", "--out", str(tmp_path / "mine")]) == 0
    assert calls == [tmp_path / "mine"]


# --------------------------------------------------------------------------- search at scale
def _clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((20, dim)).astype(np.float32)
    vectors = centers[rng.integers(0, 20, n)] + 0.3 * rng.standard_normal((n, dim))
    vectors = vectors.astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_expand_keeps_the_real_rows_and_adds_unit_neighbours() -> None:
    real = _clustered(500)
    grown = scale.expand(real, 1_200, seed=1)
    assert grown.shape == (1_200, real.shape[1])
    np.testing.assert_array_equal(grown[:500], real)
    np.testing.assert_allclose(np.linalg.norm(grown, axis=1), 1.0, atol=1e-5)
    nearest = (grown[500:] @ real.T).max(axis=1)
    assert np.median(nearest) > 0.8  # synthetic rows sit next to real ones


def test_scale_measure_reports_every_index_against_exact_search() -> None:
    result = scale.measure(
        _clustered(1_600), sizes=(500, 1_000, 2_000), n_queries=50, ef_search=(16, 64), budget_s=0.2
    )
    assert set(result["rows"]) == {"500", "1000", "2000"}
    assert result["rows"]["2000"]["synthetic_rows"] == 2_000 - 1_550
    for row in result["rows"].values():
        assert set(row["build_s"]) == set(row["memory_mb"]) == {"flat", "sq8", "hnsw"}
        assert row["memory_mb"]["sq8"] < row["memory_mb"]["flat"] < row["memory_mb"]["hnsw"]
        assert 0 < row["recall_at_10"]["sq8"] <= 1
        assert set(row["hnsw"]) == {"16", "64"}
        assert row["recall_at_10"]["hnsw"]["16"] <= row["recall_at_10"]["hnsw"]["64"] + 0.02
        assert _positive(row["flat"]["p50_us"]) and _positive(row["hnsw"]["64"]["p50_us"])
    recommended = result["recommended"]
    assert recommended["ef_search"] in (16, 64)
    assert recommended["auto_hnsw_threshold"] >= 10_000
    assert "3a." in "\n".join(scale.render({"scale": result}))


def test_scale_section_skips_cleanly_without_the_question_file(tmp_path: Path) -> None:
    result = scale.section(tmp_path / "absent.txt", tmp_path / "cache")
    assert "skipped" in result and "not found" in result["skipped"]
    assert "Skipped:" in "\n".join(scale.render({"scale": result}))


class _FakeEncoder:
    calls = 0

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        _FakeEncoder.calls += 1
        rows = np.array([[len(t), 1.0, float(hash(t) % 7)] for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_question_embeddings_are_cached_and_reloaded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import walletfaq.encoders.presets

    monkeypatch.setattr(walletfaq.encoders.presets, "resolve_encoder", lambda model: _FakeEncoder())
    monkeypatch.setattr("walletfaq.bench.questions.CHUNK_ROWS", 16)
    path = tmp_path / "q.txt"
    path.write_text("\n".join(f"问题{i}" * (1 + i % 3) for i in range(40)) + "\n\n", "utf-8")
    questions = load_questions(path)
    assert len(questions) == 40
    first = embed_questions(questions, tmp_path / "cache", model="fake", limit=20)
    assert first.shape == (20, 3) and _FakeEncoder.calls > 0
    _FakeEncoder.calls = 0
    cached = embed_questions(questions, tmp_path / "cache", model="fake", encode_missing=False)
    assert _FakeEncoder.calls == 0
    assert cached.shape == (32, 3)  # the two whole chunks written so far
    np.testing.assert_allclose(cached[:20], first, atol=1e-3)


# --------------------------------------------------------------------------- quick run
@pytest.mark.slow
def test_quick_benchmark_writes_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # use the user cache: the default model is derived once, not once per test
    monkeypatch.delenv("WALLETFAQ_CACHE_DIR", raising=False)
    out = tmp_path / "results"
    report = run_benchmark(quick=True, out_dir=out)

    for name in ("latency.json", "latency.md", "latency_vs_size.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "latency_vs_size.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "latency.json").read_text(encoding="utf-8"))
    assert data == json.loads(json.dumps(report, ensure_ascii=False))

    machine = data["machine"]
    assert machine["cpu"] and machine["cores"] >= 1 and machine["python"]
    for package in ("torch", "faiss", "sentence_transformers"):
        assert machine[package], package

    e2e = data["end_to_end"]
    for path in ("ask", "encode_faiss", "encode", "st_manual", "ask_after_torch"):
        for key in ("p50_ms", "p95_ms", "p99_ms"):
            assert _positive(e2e[path][key]), (path, key)
        assert e2e[path]["p50_ms"] <= e2e[path]["p95_ms"] <= e2e[path]["p99_ms"]
    assert _positive(e2e["ratio_ask_vs_encode_faiss_p50"])

    assert _positive(data["cache_hit"]["p50_us"])

    assert data["scale"] == {"skipped": "quick mode"}
    assert sorted(int(n) for n in data["search"]) == sorted(QUICK_SIZES)
    for row in data["search"].values():
        for method in ("flat", "hnsw", "numpy"):
            assert _positive(row[method]["p50_us"]) and _positive(row[method]["p95_us"])
        assert 0 < row["hnsw_recall_at_10"] <= 1
        assert _positive(row["build_s_flat"]) and _positive(row["build_s_hnsw"])
        assert _positive(row["memory_mb_flat"]) and _positive(row["memory_mb_hnsw"])

    threads = data["threads"]
    assert set(threads["settings"]) == {f"faiss{f}_torch{t}" for f in (1, 2) for t in (1, 2)}
    assert threads["best"] in threads["settings"]
    assert all(_positive(s["p50_ms"]) for s in threads["settings"].values())

    batch = data["batch"]
    assert set(batch["throughput"]) == {"1", "8", "64"}
    assert all(_positive(v["qps"]) for v in batch["throughput"].values())
    assert _positive(batch["index_build"]["seconds"])
    assert _positive(data["peak_rss_mb"])

    lexical = data["lexical"]
    for retriever in ("bm25", "dense"):
        assert 0 < lexical[retriever]["recall@1"] <= lexical[retriever]["recall@3"] <= 1
    assert _positive(lexical["bm25"]["latency"]["p50_ms"])

    cold = data["cold_start"]
    for key in (
        "python_startup_s",
        "import_walletfaq_s",
        "cli_ask_json_s",
        "import_sentence_transformers_s",
    ):
        assert _positive(cold[key]["median_s"]), key

    markdown = (out / "latency.md").read_text(encoding="utf-8")
    assert markdown.startswith("# walletfaq latency benchmark")
    assert machine["cpu"] in markdown
    for heading in ("## 1.", "## 2.", "## 3.", "## 4.", "## 5.", "## 6.", "## 7."):
        assert heading in markdown
