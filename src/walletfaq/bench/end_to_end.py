"""Section 1: end-to-end ``ask()`` at batch 1 against its parts (encode, FAISS, ranking) and
against plain sentence-transformers + ``util.semantic_search``.

:func:`measure` runs before torch is loaded (the ``e5-small`` preset never imports it);
:func:`measure_torch` runs after, and times ``ask()`` again with torch in the process.
"""

from __future__ import annotations

from typing import Any

from walletfaq.bench.common import K, interleaved, stats, table

RATIO_TARGET = 1.10
"""``ask()`` p50 may be at most this multiple of encode + raw FAISS search p50."""

LABELS = {
    "ask": "`ask()` (torch not loaded)",
    "encode_faiss": "encoder.encode_queries + raw FAISS search",
    "encode": "encoder.encode_queries alone",
    "normalize": "question normalizer alone (part of ask)",
    "search_rank": "ask() minus encoding: FAISS + per-entry ranking + contact gating",
    "st_manual": "plain sentence-transformers encode_query + util.semantic_search",
    "ask_after_torch": "`ask()` after torch/sentence-transformers ran in-process",
}


def measure(retriever: Any, questions: list[str], budget_s: float) -> dict[str, Any]:
    """ask() vs encode+FAISS vs encode alone, interleaved (no torch needed for presets)."""
    import walletfaq.index.vector_index as vector_index

    encoder, faiss_index = retriever.encoder, retriever.index
    fetch = min(faiss_index.ntotal, max(4 * K, 32))

    def ask(i: int) -> None:
        retriever.clear_cache()
        retriever.ask(questions[i] if i >= 0 else f"预热 {i}", k=K)

    def encode_faiss(i: int) -> None:
        vector = encoder.encode_queries([questions[i] if i >= 0 else f"预热 {i}"])
        vector_index.search(faiss_index, vector, fetch)

    def encode(i: int) -> None:
        encoder.encode_queries([questions[i] if i >= 0 else f"预热 {i}"])

    def normalize(i: int) -> None:
        retriever.normalizer(questions[i] if i >= 0 else f"预热 {i}")

    # ask() minus encoding: FAISS + best row per entry + contact gating + hits (vectors
    # encoded beforehand, untimed)
    vectors = encoder.encode_queries(questions)

    def search_rank(i: int) -> None:
        j = max(i, 0)
        retriever.search_vectors(vectors[j : j + 1], K, None, [questions[j]])

    # time.perf_counter around ask(): the cache clear happens inside, but costs ~0.1 µs
    times = interleaved(
        {
            "ask": ask,
            "encode_faiss": encode_faiss,
            "encode": encode,
            "normalize": normalize,
            "search_rank": search_rank,
        },
        len(questions),
        budget_s,
    )
    out: dict[str, Any] = {name: stats(t) for name, t in times.items()}
    out["encode_faiss"]["fetch_k"] = fetch
    out["ratio_ask_vs_encode_faiss_p50"] = out["ask"]["p50_ms"] / out["encode_faiss"]["p50_ms"]
    out["ratio_target"] = RATIO_TARGET
    out["ratio_met"] = out["ratio_ask_vs_encode_faiss_p50"] <= RATIO_TARGET
    return out


def measure_torch(retriever: Any, questions: list[str], budget_s: float) -> dict[str, Any]:
    """Plain sentence-transformers encode_query + util.semantic_search, interleaved with ask()
    (now with torch loaded in the process)."""
    import torch
    from sentence_transformers import util

    st = retriever.model
    index = retriever.index
    corpus_embeddings = torch.from_numpy(index.reconstruct_n(0, index.ntotal))
    offset = len(questions)

    def manual(i: int) -> None:
        q = questions[i] if i >= 0 else f"预热 {i}"
        emb = st.encode_query(
            [q], normalize_embeddings=True, convert_to_tensor=True, show_progress_bar=False
        )
        util.semantic_search(emb, corpus_embeddings, top_k=K)

    def ask(i: int) -> None:
        retriever.clear_cache()
        retriever.ask(f"{questions[i]} {offset}" if i >= 0 else f"预热 {i}", k=K)

    times = interleaved({"st_manual": manual, "ask_after_torch": ask}, len(questions), budget_s)
    return {name: stats(t) for name, t in times.items()}


def render(report: dict[str, Any]) -> list[str]:
    """Section 1 as Markdown."""
    e2e = report["end_to_end"]
    out = ["## 1. End-to-end, batch 1, k=10 (distinct questions, cache bypassed)", ""]
    rows = []
    for key, label in LABELS.items():
        if key in e2e and "p50_ms" in e2e[key]:
            s = e2e[key]
            rows.append([label, s["n"], s["p50_ms"], s["p95_ms"], s["p99_ms"]])
    out += [table(["path", "n", "p50 ms", "p95 ms", "p99 ms"], rows), ""]
    out += [
        f"ask p50 / (encode+FAISS) p50 = **{e2e['ratio_ask_vs_encode_faiss_p50']:.3f}** "
        f"(target ≤ {RATIO_TARGET}: {'met' if e2e['ratio_met'] else 'missed'})",
        "",
    ]
    return out
