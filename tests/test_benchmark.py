"""Smoke test of the latency benchmark: files written, every section present and positive.

No timing thresholds: timings depend on the machine and its load.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from walletfaq.benchmark import QUICK_SIZES, run_benchmark


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


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
