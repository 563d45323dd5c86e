"""Section 6: a lexical baseline, BM25 over jieba tokens, against the dense retriever on the
labelled in-domain evaluation queries."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from walletfaq.bench.common import distinct_queries, load_eval, stats, table

logger = logging.getLogger(__name__)


def measure(retriever: Any, eval_path: Path, n_latency: int) -> dict[str, Any]:
    """BM25 over jieba tokens (best row per entry) vs the dense retriever, same queries:
    Recall@1/3 of both and BM25's query latency over ``n_latency`` questions."""
    import jieba

    from walletfaq.data.corpus import index_texts
    from walletfaq.quality.evaluation.runner import evaluate

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()

    def tokens(text: str) -> list[str]:
        return [t for t in jieba.lcut(text.lower()) if t.strip() and any(c.isalnum() for c in t)]

    corpus = retriever.corpus
    texts, owners_list = index_texts(corpus.entries)
    owners = np.asarray(owners_list)
    ids = corpus.ids
    tokenized = [tokens(t) for t in texts]
    library = "bm25s"
    try:
        import bm25s

        model = bm25s.BM25()
        model.index(tokenized, show_progress=False)

        def row_scores(query_tokens: list[str]) -> np.ndarray:
            return np.asarray(model.get_scores(query_tokens), dtype=np.float64)

        row_scores(tokens("测试 查询"))
    except Exception as exc:  # bm25s API differences: fall back to rank_bm25
        logger.warning("bm25s unusable (%s); using rank_bm25", exc)
        from rank_bm25 import BM25Okapi

        library = "rank_bm25"
        okapi = BM25Okapi(tokenized)

        def row_scores(query_tokens: list[str]) -> np.ndarray:
            return np.asarray(okapi.get_scores(query_tokens), dtype=np.float64)

    def rank_entries(question: str, k: int) -> list[str]:
        scores = row_scores(tokens(question))
        best = np.full(len(ids), -np.inf)
        np.maximum.at(best, owners, scores)
        order = np.argsort(-best, kind="stable")[:k]
        return [ids[i] for i in order]

    labelled = [q for q in load_eval(eval_path) if q.get("gold")]
    hits1 = hits3 = 0
    for item in labelled:
        ranked = rank_entries(item["query"], 3)
        gold = set(item["gold"])
        hits1 += ranked[0] in gold
        hits3 += any(r in gold for r in ranked)
    questions = distinct_queries([q["query"] for q in labelled], n_latency)
    for q in questions[:5]:
        rank_entries(q, 10)
    times = []
    for q in questions:
        t0 = time.perf_counter()
        rank_entries(q, 10)
        times.append(time.perf_counter() - t0)
    dense = evaluate(retriever, eval_path).metrics
    return {
        "queries_in_domain": len(labelled),
        "bm25": {
            "library": library,
            "tokenizer": "jieba",
            "recall@1": hits1 / len(labelled),
            "recall@3": hits3 / len(labelled),
            "latency": stats(times),
        },
        "dense": {
            "model": retriever.encoder.name,
            "recall@1": dense["recall@1"],
            "recall@3": dense["recall@3"],
        },
    }


def render(report: dict[str, Any]) -> list[str]:
    """Section 6 as Markdown."""
    lex = report["lexical"]
    e2e = report["end_to_end"]
    return [
        f"## 6. Lexical baseline ({lex['queries_in_domain']} in-domain eval queries)",
        "",
        table(
            ["retriever", "Recall@1", "Recall@3", "query p50 ms"],
            [
                [
                    f"BM25 ({lex['bm25']['library']}, jieba)",
                    lex["bm25"]["recall@1"],
                    lex["bm25"]["recall@3"],
                    lex["bm25"]["latency"]["p50_ms"],
                ],
                [
                    f"dense ({lex['dense']['model']})",
                    lex["dense"]["recall@1"],
                    lex["dense"]["recall@3"],
                    e2e["ask"]["p50_ms"],
                ],
            ],
        ),
        "",
    ]
