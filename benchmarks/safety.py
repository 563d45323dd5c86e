"""The safety gate of ``answer()`` (issue 17, item 10), before and after, on the default model.

Measured on questions the gate was never fitted on:

- ``corpus/eval/safety_queries.jsonl`` (set A: 82 harmful, 77 benign look-alikes including 20
  off-topic questions), written before any exemplar; looked at while the method was chosen;
- ``corpus/eval/safety_queries_b.jsonl`` (set B: 46 harmful, 46 benign), written after the
  first results and before the last exemplars, first measured by this script's final run;
- ``corpus/eval/safety_queries_c.jsonl`` (set C: 82 harmful, 90 benign look-alikes), written
  blind after the first gate and measured on it once; its misses named the weak areas that the
  second gate's new exemplars and intent cues were written for (in new wording, none of its
  items), so it is no longer a clean test;
- ``corpus/eval/safety_queries_d.jsonl`` (set D: 52 harmful, 51 benign), written blind before
  the second gate's changes and measured once, at the end: the clean number for the second
  gate;
- the bundled evaluation set (720 benign queries: 665 in-domain, 55 out-of-domain);
- BQ dev (500 real bank customer questions, all benign; ``../shared/data/bq``, skipped when
  absent).

For every question: ``answer()`` with the gate off (before) and on (after): how many harmful
questions get a confident FAQ answer, are handed off, are refused; how many benign ones are
refused (false refusals). Also each rule of the gate alone (the logistic head, the nearest-
neighbour margin) at its fitted threshold, the gate's fitting time (cold: encoding the
exemplars and fitting; warm: read from the cache), and the added latency of ``answer()``
(gate on vs off, interleaved per question in alternating order, caches cleared before
each call).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/safety.py [--out benchmarks/results/safety.json]

``--heldout FILE`` measures only that labelled held-out file (same format as sets A and B:
text/label/kind/style) and writes just that part, with the model and the gate's thresholds,
to ``--out`` (default ``benchmarks/results/heldout_<file stem>.json``, never safety.json):

    OMP_WAIT_POLICY=PASSIVE python benchmarks/safety.py \
        --heldout corpus/eval/safety_queries_c.jsonl --out benchmarks/results/safety_c.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from walletfaq import FAQRetriever
from walletfaq.data.queries import load_bundled_queries, load_queries
from walletfaq.data.safety import (
    SafetyExample,
    bundled_safety_queries_path,
    load_bundled_safety_examples,
    load_safety_examples,
)
from walletfaq.encoders.protocol import as_unit_rows
from walletfaq.retrieval import safety as safety_module
from walletfaq.retrieval.safety import SafetyGate
from walletfaq.retrieval.safety_cues import CUES, cue_features

ROOT = Path(__file__).resolve().parents[1]
BQ_QUERIES = ROOT.parent / "shared" / "data" / "bq" / "bq_dev.queries.jsonl"
SET_B = ROOT / "corpus" / "eval" / "safety_queries_b.jsonl"
SET_C = ROOT / "corpus" / "eval" / "safety_queries_c.jsonl"
SET_D = ROOT / "corpus" / "eval" / "safety_queries_d.jsonl"
LATENCY_QUESTIONS = 200


def _decisions(r: FAQRetriever, questions: list[str], safety: bool) -> list[str]:
    r.safety = safety
    return [r.answer(q).decision for q in questions]


def _summary(before: list[str], after: list[str]) -> dict[str, Any]:
    n = len(before)
    return {
        "questions": n,
        "before": dict(Counter(before)),
        "after": dict(Counter(after)),
        "confident_before": before.count("answer"),
        "confident_after": after.count("answer"),
        "refused": after.count("refuse"),
        "refused_pct": round(100 * after.count("refuse") / n, 2) if n else 0.0,
    }


def _labelled(
    r: FAQRetriever, examples: tuple[SafetyExample, ...], rules: dict[str, Any]
) -> dict[str, Any]:
    texts = [e.text for e in examples]
    before, after = _decisions(r, texts, False), _decisions(r, texts, True)
    out: dict[str, Any] = {}
    for label in ("harmful", "benign"):
        chosen = [i for i, e in enumerate(examples) if e.label == label]
        part = _summary([before[i] for i in chosen], [after[i] for i in chosen])
        part["by_kind"] = {
            kind: _summary(
                [before[i] for i in chosen if examples[i].kind == kind],
                [after[i] for i in chosen if examples[i].kind == kind],
            )
            for kind in sorted({examples[i].kind for i in chosen})
        }
        part["each_rule_alone"] = {
            name: int(fired[chosen].sum()) for name, fired in rules_for(rules, texts).items()
        }
        if label == "harmful":
            part["not_refused"] = [texts[i] for i in chosen if after[i] != "refuse"]
            part["confident_after_texts"] = [texts[i] for i in chosen if after[i] == "answer"]
        else:
            part["false_refusals"] = [texts[i] for i in chosen if after[i] == "refuse"]
        out[label] = part
    return out


def rules_for(rules: dict[str, Any], texts: list[str]) -> dict[str, np.ndarray]:
    """Which questions each rule of the gate refuses on its own (and the head had the
    questions carried no cue), and which carry an intent cue."""
    r, head = rules["retriever"], rules["head"]
    normalized = [r.normalizer(t) for t in texts]
    vectors = as_unit_rows(r.encoder.encode_queries(normalized))
    logits, margins, _ = head.scores(vectors, normalized)
    cues = cue_features(normalized)
    per_cue = head.weights[-len(CUES) :] / head.scale[-len(CUES) :]  # logit added by each cue
    vector_only = logits - cues @ per_cue  # the head's logit had no cue been present
    return {
        "head": logits > head.threshold,
        "head_without_cues": vector_only > head.threshold,
        "neighbour_margin": margins > head.margin_threshold,
        "either (the gate)": (logits > head.threshold) | (margins > head.margin_threshold),
        "carries_a_cue": cues.any(axis=1),
    }


def _benign_set(r: FAQRetriever, questions: list[str], rules: dict[str, Any]) -> dict[str, Any]:
    before, after = _decisions(r, questions, False), _decisions(r, questions, True)
    out = _summary(before, after)
    out["each_rule_alone"] = {k: int(v.sum()) for k, v in rules_for(rules, questions).items()}
    out["false_refusals"] = [q for q, d in zip(questions, after, strict=True) if d == "refuse"]
    out["refused_among_confident_before"] = sum(
        1 for b, a in zip(before, after, strict=True) if b == "answer" and a == "refuse"
    )
    return out


def _fit_times(r: FAQRetriever) -> dict[str, float]:
    """Seconds to build the gate cold (a fresh cache directory) and warm (from the cache)."""
    saved = os.environ.get("WALLETFAQ_CACHE_DIR")
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["WALLETFAQ_CACHE_DIR"] = scratch
        try:
            times = {}
            for name in ("cold_s", "warm_s"):
                started = time.perf_counter()
                SafetyGate().head(r.encoder, r.normalizer, r._state)
                times[name] = round(time.perf_counter() - started, 3)
        finally:
            if saved is None:
                os.environ.pop("WALLETFAQ_CACHE_DIR", None)
            else:
                os.environ["WALLETFAQ_CACHE_DIR"] = saved
    return times


def _latency(r: FAQRetriever, questions: list[str]) -> dict[str, Any]:
    timings: dict[bool, list[float]] = {True: [], False: []}
    for position, question in enumerate(questions):
        for safety in (True, False) if position % 2 else (False, True):  # alternate the order
            r.safety = safety
            r.clear_cache()
            started = time.perf_counter()
            r.answer(question)
            timings[safety].append(1000 * (time.perf_counter() - started))
    r.safety = True

    def stats(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {
            "p50_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
        }

    on, off = stats(timings[True]), stats(timings[False])
    return {
        "questions": len(questions),
        "gate_on": on,
        "gate_off": off,
        "added_p50_ms": round(on["p50_ms"] - off["p50_ms"], 2),
        "added_median_of_pairs_ms": round(
            statistics.median(a - b for a, b in zip(timings[True], timings[False], strict=True)),
            2,
        ),
    }


def _judge_ms(r: FAQRetriever, head: Any, question: str, repeats: int = 2000) -> float:
    """Milliseconds the gate adds to an ``answer()`` by itself: judging one encoded vector (the
    end-to-end pairs above carry the shared machine's noise)."""
    normalized = [r.normalizer(question)]
    vector = as_unit_rows(r.encoder.encode_queries(normalized))
    head.judge(vector, normalized)
    started = time.perf_counter()
    for _ in range(repeats):
        head.judge(vector, normalized)
    return round(1000 * (time.perf_counter() - started) / repeats, 3)


def _heldout_only(path: Path, out: Path) -> int:
    """Measure one labelled held-out file with the default model; write ``out``."""
    examples = load_safety_examples(path)
    r = FAQRetriever.from_corpus()
    r.warm_up()
    head = r._safety_gate.head(r.encoder, r.normalizer, r._state)
    result: dict[str, Any] = {
        "model": r.encoder.name,
        "threshold": r.threshold,
        "gate": {
            "head_threshold": round(head.threshold, 4),
            "margin_threshold": round(head.margin_threshold, 4),
        },
        "heldout_file": str(path),
        "heldout": _labelled(r, examples, {"retriever": r, "head": head}),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", "utf-8")
    harmful, benign = result["heldout"]["harmful"], result["heldout"]["benign"]
    print(
        f"{path.name}: harmful {harmful['questions']}: confident {harmful['confident_before']} -> "
        f"{harmful['confident_after']}, refused {harmful['refused']}; benign "
        f"{benign['questions']}: refused {benign['refused']}"
    )
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--heldout",
        type=Path,
        default=None,
        help="measure only this labelled held-out file (text/label/kind/style per line)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.heldout is not None:
        out = args.out or ROOT / "benchmarks" / "results" / f"heldout_{args.heldout.stem}.json"
        return _heldout_only(args.heldout, out)
    args.out = args.out or ROOT / "benchmarks" / "results" / "safety.json"

    r = FAQRetriever.from_corpus()
    fit = _fit_times(r)
    r.warm_up()
    head = r._safety_gate.head(r.encoder, r.normalizer, r._state)
    rules = {"retriever": r, "head": head}
    exemplars = load_bundled_safety_examples()
    eval_queries = load_bundled_queries()
    in_domain = [q.query for q in eval_queries if q.gold]
    out_of_domain = [q.query for q in eval_queries if not q.gold]
    result: dict[str, Any] = {
        "model": r.encoder.name,
        "threshold": r.threshold,
        "exemplars": dict(Counter(e.label for e in exemplars)),
        "gate": {
            "head_threshold": round(head.threshold, 4),
            "margin_threshold": round(head.margin_threshold, 4),
            "head_l2": safety_module.HEAD_L2,
            "cue_l2": safety_module.CUE_L2,
            "cue_weights": {
                cue.name: round(float(w / sc), 3)
                for cue, w, sc in zip(
                    CUES, head.weights[-len(CUES) :], head.scale[-len(CUES) :], strict=True
                )
            },
            "contrast_weight": safety_module.CONTRAST_WEIGHT,
            "head_levels": safety_module.HEAD_LEVELS,
            "margin_levels": safety_module.MARGIN_LEVELS,
            "folds": safety_module.FOLDS,
            "fit": fit,
        },
        "set_a": _labelled(r, load_safety_examples(bundled_safety_queries_path()), rules),
        "set_b": _labelled(r, load_safety_examples(SET_B), rules),
        "set_c": _labelled(r, load_safety_examples(SET_C), rules),
        "set_d": _labelled(r, load_safety_examples(SET_D), rules),
        "eval_in_domain": _benign_set(r, in_domain, rules),
        "eval_out_of_domain": _benign_set(r, out_of_domain, rules),
    }
    result["eval_all"] = {
        "questions": len(eval_queries),
        "refused": result["eval_in_domain"]["refused"] + result["eval_out_of_domain"]["refused"],
    }
    result["eval_all"]["refused_pct"] = round(
        100 * result["eval_all"]["refused"] / len(eval_queries), 2
    )
    if BQ_QUERIES.is_file():
        bq = [q.query for q in load_queries(BQ_QUERIES)]
        result["bq_dev"] = _benign_set(r, bq, rules)
    else:
        result["bq_dev"] = "skipped: ../shared/data/bq is absent"
    result["latency"] = _latency(r, in_domain[:LATENCY_QUESTIONS])
    result["latency"]["judge_one_vector_ms"] = _judge_ms(r, head, in_domain[0])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", "utf-8")
    for name in ("set_a", "set_b", "set_c", "set_d"):
        harmful, benign = result[name]["harmful"], result[name]["benign"]
        print(
            f"{name}: harmful {harmful['questions']}: confident {harmful['confident_before']} -> "
            f"{harmful['confident_after']}, refused {harmful['refused']}; benign "
            f"{benign['questions']}: refused {benign['refused']}"
        )
    print(
        f"eval: refused {result['eval_all']['refused']}/{len(eval_queries)} "
        f"({result['eval_all']['refused_pct']} %)"
    )
    if isinstance(result["bq_dev"], dict):
        print(f"bq: refused {result['bq_dev']['refused']}/{result['bq_dev']['questions']}")
    print(f"latency: {result['latency']}; fit: {fit}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
