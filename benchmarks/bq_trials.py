"""BQ dev: levers tried for issue 9's +5 MRR@10 goal that did not make it into walletfaq.

Each trial scores the 500 BQ dev queries against the 2,000 corpus entries with the default
model (e5-small, query prompt on both sides, as ``FAQRetriever.from_corpus`` does) and reports
MRR@10 / R@1 against the same dense scores, with a paired sign-flip test on per-query
reciprocal ranks. Nothing here is fitted on BQ dev: only ``bq_dev_pairs.train.tsv`` is learned
from; the settings grids are printed whole, so no best row is picked in private.

- ``memory``: paraphrase memory. The training sentences are a log of user questions; a query
  close to one borrows its labelled paraphrases (query expansion), or a positive pair whose two
  sentences both land on the same entry becomes that entry's alt questions.
- ``hubness``: CSLS-style hubness correction: each entry's score is lowered by ``beta`` × its
  mean similarity to its ``k`` nearest reference texts (the training sentences, or the other
  entries), so entries that are close to everything stop crowding the top.
- ``rerank``: a cross-encoder (e5-small's weights with a new one-logit head, sentence-
  transformers' ``CrossEncoderTrainer`` + ``BinaryCrossEntropyLoss``) trained on the labelled
  pairs in both orders, reranking the dense top 20 alone or z-score fused with the dense score.
  Minutes of training on CPU (``finetune`` extra).

Needs ``../shared/data/bq`` (skips cleanly when absent) and the ``eval`` extra.

    python benchmarks/bq_trials.py [--trials "memory;hubness;rerank"]
        [--out benchmarks/results/bq_trials.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from walletfaq import FAQRetriever
from walletfaq.data.corpus import load_corpus
from walletfaq.quality.evaluation import load_queries, sign_flip_p_value

ROOT = Path(__file__).resolve().parents[1]
BQ = ROOT.parent / "shared" / "data" / "bq"
TRIALS = ("memory", "hubness", "rerank")
RERANK_DEPTH = 20


class Scorer:
    """Reciprocal ranks of the BQ dev queries under a score matrix (queries × entries)."""

    def __init__(self, entry_ids: list[str], gold: list[set[str]]) -> None:
        self.entry_ids = np.asarray(entry_ids)
        self.gold = gold

    def reciprocal_ranks(self, scores: np.ndarray, depth: int = 10) -> np.ndarray:
        top = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
        out = np.zeros(len(self.gold))
        for i, row in enumerate(top):
            for rank, entry in enumerate(self.entry_ids[row], 1):
                if entry in self.gold[i]:
                    out[i] = 1 / rank
                    break
        return out

    def row(self, scores: np.ndarray, base: np.ndarray) -> dict[str, float]:
        rr, rr_base = self.reciprocal_ranks(scores), self.reciprocal_ranks(base)
        return {
            "mrr@10": round(float(rr.mean()), 4),
            "recall@1": round(float((rr == 1).mean()), 4),
            "delta_mrr@10": round(float(rr.mean() - rr_base.mean()), 4),
            "p_value": round(sign_flip_p_value(rr - rr_base), 4),
        }


def _unit(vectors: Any) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def _zscore(scores: np.ndarray) -> np.ndarray:
    return (scores - scores.mean(1, keepdims=True)) / (scores.std(1, keepdims=True) + 1e-9)


def memory_trial(
    scorer: Scorer, queries: np.ndarray, entries: np.ndarray, texts: np.ndarray, pairs: list
) -> list[dict[str, Any]]:
    base = queries @ entries.T
    partners: list[set[int]] = [set() for _ in range(len(texts))]
    for a, b, label in pairs:
        if label == 1:
            partners[a].add(b)
            partners[b].add(a)
    rows = []
    near = queries @ texts.T
    for tau in (0.85, 0.9, 0.93):
        for alpha in (0.3, 0.5):
            expanded = queries.copy()
            for i in range(len(queries)):
                j = int(np.argmax(near[i]))
                if near[i, j] >= tau:
                    group = [j, *partners[j]]
                    expanded[i] = queries[i] + alpha * texts[group].mean(0)
            rows.append(
                {
                    "trial": f"query expansion: nearest training sentence ≥ {tau}, α {alpha}",
                    **scorer.row(_unit(expanded) @ entries.T, base),
                }
            )
    landing = texts @ entries.T
    top, top_score = landing.argmax(1), landing.max(1)
    for tau in (0.85, 0.9):
        extra: dict[int, set[int]] = {}
        for a, b, label in pairs:
            if label == 1 and top[a] == top[b] and min(top_score[a], top_score[b]) >= tau:
                extra.setdefault(int(top[a]), set()).update((a, b))
        scores = base.copy()
        for entry, members in extra.items():
            scores[:, entry] = np.maximum(
                scores[:, entry], (queries @ texts[list(members)].T).max(1)
            )
        rows.append(
            {
                "trial": f"pairs landing on one entry (both ≥ {tau}) as its alt questions "
                f"({sum(map(len, extra.values()))} texts on {len(extra)} entries)",
                **scorer.row(scores, base),
            }
        )
    return rows


def hubness_trial(
    scorer: Scorer, queries: np.ndarray, entries: np.ndarray, texts: np.ndarray
) -> list[dict[str, Any]]:
    base = queries @ entries.T
    to_entries = entries @ entries.T
    np.fill_diagonal(to_entries, -1.0)
    rows = []
    for name, reference in (
        ("training sentences", entries @ texts.T),
        ("other entries", to_entries),
    ):
        ordered = np.sort(reference, axis=1)
        for k in (5, 10, 50):
            hub = ordered[:, -k:].mean(1)
            for beta in (0.25, 0.5, 1.0):
                rows.append(
                    {
                        "trial": f"hubness: {name}, k {k}, β {beta}",
                        **scorer.row(base - beta * hub[None, :], base),
                    }
                )
    return rows


def rerank_trial(
    scorer: Scorer, base: np.ndarray, query_texts: list[str], entry_texts: list[str], raw: list
) -> list[dict[str, Any]]:
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    from walletfaq.encoders.presets import PresetEncoder

    path = PresetEncoder("e5-small").ensure_folder()
    first = [a for a, _, _ in raw] + [b for _, b, _ in raw]
    second = [b for _, b, _ in raw] + [a for a, _, _ in raw]
    labels = [float(y) for *_, y in raw] * 2
    data = Dataset.from_dict({"sentence1": first, "sentence2": second, "label": labels})
    model = CrossEncoder(str(path), num_labels=1, max_length=64)
    with _temporary_dir() as out:
        args = CrossEncoderTrainingArguments(
            output_dir=out,
            num_train_epochs=1,
            per_device_train_batch_size=32,
            learning_rate=5e-5,
            warmup_steps=0.1,
            weight_decay=0.01,
            save_strategy="no",
            report_to=[],
            seed=0,
            use_cpu=True,
        )
        started = time.perf_counter()
        CrossEncoderTrainer(
            model=model,
            args=args,
            train_dataset=data.shuffle(seed=0),
            loss=BinaryCrossEntropyLoss(model),
        ).train()
        trained_s = time.perf_counter() - started
    top = np.argsort(-base, axis=1, kind="stable")[:, :RERANK_DEPTH]
    started = time.perf_counter()
    logits = np.asarray(
        model.predict(
            [(query_texts[i], entry_texts[j]) for i, row in enumerate(top) for j in row],
            batch_size=64,
            show_progress_bar=False,
        )
    ).reshape(top.shape)
    per_query_ms = (time.perf_counter() - started) / len(top) * 1000
    dense_top = np.take_along_axis(base, top, axis=1)
    rows = []
    for weight in (0.0, 0.5, 1.0, 2.0):
        fused = _zscore(logits) + weight * _zscore(dense_top)
        scores = np.full_like(base, -np.inf)
        np.put_along_axis(scores, top, fused + 1e3, axis=1)  # reranked top first, in new order
        rows.append(
            {
                "trial": f"cross-encoder on the dense top {RERANK_DEPTH}"
                + (f", + {weight} × dense (z-scores)" if weight else " alone"),
                "training_s": round(trained_s, 1),
                "rerank_ms_per_query": round(per_query_ms, 1),
                **scorer.row(scores, base),
            }
        )
    return rows


def _temporary_dir() -> Any:
    import tempfile

    return tempfile.TemporaryDirectory(prefix="walletfaq-bq-trials-")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", default="memory;hubness", help=f"of {TRIALS}, ';'-separated")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "bq_trials.json"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    chosen = [name.strip() for name in args.trials.split(";") if name.strip()]
    if unknown := sorted(set(chosen) - set(TRIALS)):
        parser.error(f"unknown trial(s) {unknown}; choose from {list(TRIALS)}")
    if not (BQ / "bq_dev_pairs.train.tsv").exists():
        print(f"skipped: {BQ} is absent (the BQ set lives in ../shared)")
        return 0

    corpus = load_corpus(BQ / "bq_dev.corpus.jsonl")
    queries = load_queries(BQ / "bq_dev.queries.jsonl")
    with open(BQ / "bq_dev_pairs.train.tsv", encoding="utf-8", newline="") as handle:
        raw = [
            (row["sentence1"], row["sentence2"], int(row["label"]))
            for row in csv.DictReader(handle, delimiter="\t")
        ]
    texts = sorted({a for a, _, _ in raw} | {b for _, b, _ in raw})
    position = {text: i for i, text in enumerate(texts)}
    pairs = [(position[a], position[b], label) for a, b, label in raw]
    encoder = FAQRetriever.from_corpus(corpus, cache=False).encoder
    entry_texts = [entry.question for entry in corpus]
    query_texts = [query.query for query in queries]
    entry_vectors = _unit(encoder.encode_queries_bulk(entry_texts))
    text_vectors = _unit(encoder.encode_queries_bulk(texts))
    query_vectors = _unit(encoder.encode_queries(query_texts))
    scorer = Scorer([entry.id for entry in corpus], [set(query.gold) for query in queries])
    base = query_vectors @ entry_vectors.T
    rows: list[dict[str, Any]] = [{"trial": "dense (e5-small)", **scorer.row(base, base)}]
    if "memory" in chosen:
        rows += memory_trial(scorer, query_vectors, entry_vectors, text_vectors, pairs)
    if "hubness" in chosen:
        rows += hubness_trial(scorer, query_vectors, entry_vectors, text_vectors)
    if "rerank" in chosen:
        rows += rerank_trial(scorer, base, query_texts, entry_texts, raw)

    print("| trial | MRR@10 | R@1 | Δ MRR@10 | p |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['trial']} | {row['mrr@10']:.4f} | {row['recall@1']:.4f} | "
            f"{row['delta_mrr@10']:+.4f} | {row['p_value']:.3f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
