"""Recompute the presets' no-answer thresholds by their rule, on the bundled evaluation set.

    python benchmarks/thresholds.py [--models e5-small use-m3]

For each preset: the threshold :data:`walletfaq.quality.calibration.PRESET_RULE` chooses (the
value to put in ``walletfaq.encoders.presets.PRESETS``: rounded down to 4 decimals, which
answers the same queries), what it does (coverage, out-of-domain questions accepted,
precision), the same at the threshold the preset has now, and at a stricter rule (precision
0.95, 90 % of out-of-domain refused) for apps where a wrong answer costs more than a hand-over.
"""

from __future__ import annotations

import argparse
import math
import warnings

from walletfaq import FAQRetriever, calibrate, evaluate
from walletfaq.encoders.presets import default_threshold
from walletfaq.quality.calibration import PRESET_RULE, CalibrationWarning


def describe(name: str, point) -> str:  # type: ignore[no-untyped-def]
    return (
        f"  {name:<28} threshold {point.threshold:.4f}: coverage "
        f"{point.in_domain_answered}/{point.n_in_domain} = {point.coverage:.3f}, out-of-domain "
        f"accepted {point.n_out_of_domain - point.ood_abstained}/{point.n_out_of_domain}, "
        f"precision {point.precision:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["e5-small", "use-m3"])
    args = parser.parse_args()
    print(f"rule: {PRESET_RULE}")
    for model in args.models:
        retriever = FAQRetriever.from_corpus(model=model)
        report = evaluate(retriever)
        chosen = PRESET_RULE.calibrate(retriever, report)
        below = max(
            (t for t in (p.threshold for p in chosen.curve) if t < chosen.threshold), default=-1.0
        )
        rounded = math.floor(chosen.threshold * 1e4) / 1e4
        if rounded <= below:
            rounded = chosen.threshold
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CalibrationWarning)
            strict = calibrate(retriever, report, 0.95, min_ood_abstain=0.9)
        print(f"{model}: {len(report.results)} queries; preset value by the rule: {rounded}")
        print(describe("by the rule", chosen.chosen))
        print(describe("the preset's threshold now", report.at_threshold(default_threshold(model))))
        print(describe("stricter (0.95, 0.9)", strict.chosen))


if __name__ == "__main__":
    main()
