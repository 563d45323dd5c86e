"""Do the doctor's misplaced-question findings cause retrieval errors? Measured on the bundled
corpus and evaluation set.

    python benchmarks/doctor_vs_eval.py [--model e5-small]

For each misplaced-question finding (a text of entry A closer to entry B's text than to any
other text of A), counts the evaluation queries whose gold entry is A, how many of them miss at
rank 1, and how many are answered by B, the rival the finding names. Grouped by the finding's
gap (B's cosine minus A's, in paraphrase-distance units) and by its label. The doctor's
severity labels are meant to say how likely a finding is to cost right answers; this table is
what ``MISPLACED_MAX_SEVERITY`` was chosen from (``walletfaq.quality.doctor.checks``).
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from walletfaq import FAQRetriever, doctor, evaluate
from walletfaq.quality.doctor.checks import _examine
from walletfaq.quality.doctor.neighbours import (
    _blocked_entries,
    _generated_hotlines,
    _nearest,
    _rows,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="e5-small")
    args = parser.parse_args()
    retriever = FAQRetriever.from_corpus(model=args.model)
    report = doctor(retriever)
    assert report.findings == _examine(retriever).findings
    rows = _rows(retriever)
    nearest = _nearest(
        rows,
        _blocked_entries(retriever, rows, _generated_hotlines(retriever)),
        len(retriever.corpus),
    )
    gap_of = {}
    for i in np.flatnonzero(np.isfinite(nearest.own) & (nearest.other > nearest.own)).tolist():
        text = rows.texts[int(rows.probes[i])]
        gap_of[text] = (
            float(nearest.other[i]) - float(nearest.own[i])
        ) / report.paraphrase_distance
    results = evaluate(retriever, progress=False).results
    by_gold = defaultdict(list)
    for result in results:
        if result.in_domain:
            by_gold[result.gold[0]].append(result)

    def counts(findings):  # type: ignore[no-untyped-def]
        queries = missed = lost = 0
        for finding in findings:
            own, rival = finding.entry_ids[:2]
            for result in by_gold.get(own, ()):
                queries += 1
                missed += result.rank != 1
                lost += result.ranked[0] == rival
        return len(findings), queries, missed, lost

    misplaced = report.of_kind("misplaced-question")
    print(f"{report.summary(limit=0)}\n")
    print(
        "| findings | gap (units) | label | eval queries of the entry | missed at rank 1 | "
        "answered by the named rival |"
    )
    print("|---|---|---|---|---|---|")
    for low, high in ((0, 0.5), (0.5, 1), (1, 1.5), (1.5, 2), (2, 99)):
        group = [f for f in misplaced if low <= gap_of.get(f.texts[0], 0.0) < high]
        n, queries, missed, lost = counts(group)
        labels = ", ".join(sorted({f.label for f in group})) or "-"
        span = f"{low}-{high}" if high < 99 else f">= {low}"
        print(
            f"| {n} | {span} | {labels} | {queries} | {missed} ({missed / max(queries, 1):.1%})"
            f" | {lost} ({lost / max(queries, 1):.1%}) |"
        )
    flagged = {f.entry_ids[0] for f in misplaced}
    clean = [r for entry, rs in by_gold.items() if entry not in flagged for r in rs]
    missed = sum(r.rank != 1 for r in clean)
    print(
        f"\nentries without a misplaced-question finding: {len(clean)} eval queries, "
        f"{missed} missed at rank 1 ({missed / max(len(clean), 1):.1%})"
    )


if __name__ == "__main__":
    main()
