"""Recompute the presets' clarify margins by their rule, on the bundled evaluation set.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/clarify.py [--models e5-small use-m3]
        [--out benchmarks/results/clarify.json]

For each preset, at its no-answer threshold (``walletfaq.encoders.presets``, chosen by
``PRESET_RULE``): ``answer()``'s rule replayed on the 720 labelled queries for every margin of
``walletfaq.quality.clarify.MARGIN_GRID`` (precision of answers, coverage, clarify rate, clarify
useful, resolved), the margin :data:`~walletfaq.quality.clarify.MARGIN_RULE` chooses (the value
to put in ``PRESETS``), before (margin 0) and after; then:

- **answer() itself**, at the chosen margin, on every query: its decisions must be the replay's
  (a query the safety gate refuses is counted apart);
- **held-out check**: the margin is chosen on the same queries it is measured on, so the rule is
  also applied on half of the queries (split by gold entry, so that paraphrases of one entry
  stay together; out-of-domain queries split at random; seeded) and measured on the other half,
  both ways, for 5 seeds.

Writes the JSON (and a plot per model beside it, ``clarify_<model>.png``).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from walletfaq import FAQRetriever, evaluate
from walletfaq.encoders.presets import default_clarify_margin
from walletfaq.index.search import close_positions
from walletfaq.quality.calibration import CalibrationWarning
from walletfaq.quality.clarify import (
    ANSWER_K,
    MARGIN_GRID,
    MARGIN_RULE,
    MarginPoint,
    choose_margin,
    margin_point,
)
from walletfaq.quality.evaluation.results import QueryResult

ROOT = Path(__file__).resolve().parents[1]
SEEDS = (0, 1, 2, 3, 4)


def split(results: list[QueryResult], seed: int) -> tuple[list[int], list[int]]:
    """Two halves of the query positions: whole gold entries on one side, out-of-domain
    queries shuffled between them."""
    rng = random.Random(seed)
    entries = sorted({r.gold[0] for r in results if r.gold})
    rng.shuffle(entries)
    first = set(entries[: len(entries) // 2])
    ood = [i for i, r in enumerate(results) if not r.gold]
    rng.shuffle(ood)
    half_a = [i for i, r in enumerate(results) if r.gold and r.gold[0] in first]
    half_a += ood[: len(ood) // 2]
    half_b = sorted(set(range(len(results))) - set(half_a))
    return sorted(half_a), half_b


def held_out(results: list[QueryResult], threshold: float) -> dict[str, Any]:
    """The rule applied on one half and measured on the other, both ways, per seed."""
    runs = []
    for seed in SEEDS:
        halves = split(results, seed)
        for fit, test in (halves, halves[::-1]):
            fit_points = [
                margin_point([results[i] for i in fit], threshold, m) for m in MARGIN_GRID
            ]
            chosen, reached = choose_margin(fit_points, MARGIN_RULE)
            tested = [results[i] for i in test]
            before = margin_point(tested, threshold, 0.0)
            after = margin_point(tested, threshold, chosen.margin)
            runs.append(
                {
                    "seed": seed,
                    "margin": chosen.margin,
                    "reached_on_fit": reached,
                    "precision_before": before.precision,
                    "precision_after": after.precision,
                    "coverage_before": before.coverage,
                    "coverage_after": after.coverage,
                    "clarify_rate": after.clarify_rate,
                    "clarify_useful": after.clarify_useful,
                }
            )

    def mean(name: str) -> float:
        return statistics.fmean(run[name] for run in runs if not math.isnan(run[name]))

    return {
        "runs": runs,
        "margins": dict(Counter(run["margin"] for run in runs)),
        "mean": {
            name: mean(name)
            for name in (
                "precision_before",
                "precision_after",
                "coverage_before",
                "coverage_after",
                "clarify_rate",
                "clarify_useful",
            )
        },
        "precision_target_met_held_out": sum(
            run["precision_after"] >= MARGIN_RULE.target_precision for run in runs
        ),
        "clarify_cap_kept_held_out": sum(
            run["clarify_rate"] <= MARGIN_RULE.max_clarify_rate for run in runs
        ),
    }


def answer_check(
    retriever: FAQRetriever, results: list[QueryResult], margin: float
) -> dict[str, Any]:
    """``answer()`` on every query at ``margin``: its decisions and options against the
    replay's (:func:`close_positions` on the evaluation's ranking)."""
    agree = 0
    decisions: Counter[str] = Counter()
    started = time.perf_counter()
    for result in results:
        outcome = retriever.answer(result.query, clarify_margin=margin)
        decisions[outcome.decision] += 1
        if outcome.decision == "refuse":
            continue
        close = close_positions(result.scores[:ANSWER_K], retriever.threshold, margin)
        expected = "handoff" if not close else "clarify" if len(close) > 1 else "answer"
        options = [result.ranked[i] for i in close] if len(close) > 1 else []
        agree += (outcome.decision, [o.id for o in outcome.options]) == (expected, options)
    return {
        "decisions": dict(decisions),
        "agree_with_replay": agree,
        "refused_by_the_safety_gate": decisions["refuse"],
        "queries": len(results),
        "seconds": round(time.perf_counter() - started, 1),
    }


def plain(value: Any) -> Any:
    """``value`` for strict JSON: floats rounded to 4 decimals, NaN as null."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def row(point: MarginPoint) -> dict[str, Any]:
    low, high = point.precision_interval
    return {**point.to_dict(), "precision_interval": [low, high]}


def measure(model: str, out_dir: Path) -> dict[str, Any]:
    from walletfaq.quality.clarify import calibrate_margin

    retriever = FAQRetriever.from_corpus(model=model)
    threshold = retriever.threshold
    report = evaluate(retriever)
    results = list(report.results)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        calibration = calibrate_margin(retriever, report, MARGIN_RULE, threshold=threshold)
    figure = calibration.plot()
    figure.savefig(out_dir / f"clarify_{model}.png", dpi=110)
    chosen, before = calibration.chosen, calibration.before
    print(f"{model}: threshold {threshold:.4f}, {len(results)} queries; rule: {MARGIN_RULE}")
    print(calibration.table(every=2))
    print(f"  before: {before.summary()}")
    print(f"  chosen: {chosen.summary()} (reached: {calibration.reached})")
    print(f"  preset value now: {default_clarify_margin(model)}")
    check = answer_check(retriever, results, chosen.margin)
    print(f"  answer() at {chosen.margin}: {check}")
    held = held_out(results, threshold)
    print(
        f"  held-out halves ({len(held['runs'])} runs): {held['mean']}, margins {held['margins']}"
    )
    return {
        "threshold": threshold,
        "queries": len(results),
        "in_domain": before.n_in_domain,
        "out_of_domain": before.n_out_of_domain,
        "reached": calibration.reached,
        "preset_value_when_run": default_clarify_margin(model),
        "before": row(before),
        "chosen": row(chosen),
        "answer_check": check,
        "held_out": held,
        "curves": [row(p) for p in calibration.points],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["e5-small", "use-m3"])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "clarify.json"
    )
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = {
        "rule": str(MARGIN_RULE),
        "grid": list(MARGIN_GRID),
        "models": {model: measure(model, args.out.parent) for model in args.models},
    }
    text = json.dumps(plain(results), ensure_ascii=False, indent=1, allow_nan=False)
    args.out.write_text(text + "\n", "utf-8")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
