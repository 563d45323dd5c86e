"""Gap mining (issue 19, part 3) on simulated traffic, with the default model (e5-small).

Two parts, both written to ``benchmarks/results/gaps.json``:

1. **parameters** (``benchmarks/gaps_parameters.py``) -- how the defaults of
   :mod:`walletfaq.quality.gaps` were chosen, on development tasks that share nothing with the
   planted topics of part 2 (groups of alt questions of bundled entries; entries made
   uncovered or covered-in-other-words by editing the corpus in memory).

2. **traffic** -- planted topics (``benchmarks/data/traffic_topics.jsonl``: 12 topics the
   corpus does not cover, 4 covered topics asked in other words; never added to ``corpus/``)
   split per topic, seeded, BEFORE mining: one half is logged traffic, the other held out. The
   traffic mixes the mined halves with the 720 bundled evaluation queries as background; every
   question is answered by ``answer()``, and a simulated user leaves feedback on 30 % of the
   answered ones (helpful iff the entry given is right). Then ``find_gaps`` with its defaults:
   per planted topic, is it one cluster (purity, recall)? A simulated editor accepts the right
   proposals (add_alts to the right entry; new_entry for an uncovered topic, with a placeholder
   answer) and rejects the others; the held-out halves are asked before and after: answer
   rate, R@1, answered-and-right; the bundled evaluation set is asked again to check that
   nothing that worked broke.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/gaps.py [--out benchmarks/results/gaps.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from gaps_parameters import GRID, dev_bar, dev_clustering, dev_margin, topic_scores  # beside

from walletfaq import FAQRetriever
from walletfaq.data.queries import load_bundled_queries
from walletfaq.quality.gaps import (
    DEFAULT_BAR_DELTA,
    DEFAULT_CLUSTERING,
    DEFAULT_LOW_MARGIN,
    DEFAULT_MIN_SHARE,
    AddAlts,
    TrafficQuestion,
    apply_proposal,
    find_gaps,
    miss_reason,
)

ROOT = Path(__file__).resolve().parents[1]
TOPICS = ROOT / "benchmarks" / "data" / "traffic_topics.jsonl"
SEED = 19
FEEDBACK_SHARE = 0.3
REPEATS = 3
OOD = "<out-of-domain>"


# ----------------------------------------------------------------------------- traffic
def logged(
    r: FAQRetriever, questions: list[str], labels: list[str], rng: random.Random, start: datetime
) -> list[TrafficQuestion]:
    """Answer each question as the service would and log it, with simulated feedback: on
    :data:`FEEDBACK_SHARE` of the answered ones, helpful iff the entry given is the label."""
    out = []
    for number, (question, label) in enumerate(zip(questions, labels, strict=True)):
        answer = r.answer(question)
        hits = answer.candidates
        helpful = None
        if answer.decision == "answer" and rng.random() < FEEDBACK_SHARE:
            helpful = answer.hit is not None and answer.hit.id == label
        out.append(
            TrafficQuestion(
                question=question,
                decision=answer.decision,
                top_entry=hits[0].id if hits else None,
                top_score=hits[0].score if hits else None,
                margin=hits[0].score - hits[1].score if len(hits) > 1 else None,
                helpful=helpful,
                request_id=f"req-{number:05d}",
                asked_at=start + timedelta(seconds=rng.randrange(7 * 24 * 3600)),
            )
        )
    return out


def read_topics() -> list[dict[str, Any]]:
    return [json.loads(line) for line in TOPICS.read_text(encoding="utf-8").splitlines() if line]


def background(r: FAQRetriever) -> tuple[list[str], list[str]]:
    """The bundled evaluation queries and their labels (the gold entry, or out-of-domain)."""
    queries = load_bundled_queries()
    return [q.query for q in queries], [q.gold[0] if q.gold else OOD for q in queries]


def split_topics(topics: list[dict[str, Any]], rng: random.Random) -> dict[str, tuple[list, list]]:
    """Per topic: (mined half, held-out half), shuffled with ``rng``; the mined half gets the
    extra question of an odd count."""
    halves = {}
    for topic in topics:
        questions = list(topic["questions"])
        rng.shuffle(questions)
        cut = (len(questions) + 1) // 2
        halves[topic["topic"]] = (questions[:cut], questions[cut:])
    return halves


# ----------------------------------------------------------------------------- part 2
def held_out_scores(r: FAQRetriever, questions: list[str], right: set[str]) -> dict:
    """Answer rate, R@1 and answered-and-right of ``questions``, whose right entries are
    ``right`` (for an uncovered topic: the entries created from its clusters, if any)."""
    answers = [r.answer(q) for q in questions]
    n = len(answers)
    top1 = [a.candidates[0].id if a.candidates else None for a in answers]
    return {
        "questions": n,
        "answer_rate": round(sum(a.decision == "answer" for a in answers) / n, 4),
        "r_at_1": round(sum(t in right for t in top1) / n, 4),
        "answered_right": round(
            sum(a.hit is not None and a.hit.id in right for a in answers) / n, 4
        ),
        "decisions": dict(Counter(a.decision for a in answers)),
    }


def editor(cluster_label: str | None, proposal: Any, kinds: dict[str, dict]) -> str:
    """A simulated editor who knows the truth: "accept" a right proposal, else why not."""
    if cluster_label is None or cluster_label == OOD:
        return "reject: out-of-domain"
    topic = kinds.get(cluster_label)
    entry = topic["entry"] if topic is not None else cluster_label
    if topic is not None and topic["kind"] == "uncovered":
        return "accept" if proposal.kind == "new_entry" else "reject: add_alts for a new topic"
    if isinstance(proposal, AddAlts):
        return "accept" if proposal.entry_id == entry else "reject: add_alts to the wrong entry"
    return "reject: new_entry for a covered question"


def traffic_run(r: FAQRetriever, repeats: int) -> tuple[dict, list[TrafficQuestion], list[str]]:
    """Log the traffic, mine it, accept the right proposals, compare the held-out halves
    before and after. Each mined paraphrase is asked 1 to ``repeats`` times (seeded); the
    split is the same for every ``repeats``."""
    topics = read_topics()
    kinds = {t["topic"]: t for t in topics}
    halves = split_topics(topics, random.Random(SEED))
    rng = random.Random(SEED + repeats)
    bg_questions, bg_labels = background(r)
    questions = list(bg_questions)
    labels = list(bg_labels)
    for topic in topics:
        for question in halves[topic["topic"]][0]:
            times = rng.randint(1, repeats)
            questions += [question] * times
            labels += [topic["topic"]] * times
    order = list(range(len(questions)))
    rng.shuffle(order)
    questions = [questions[i] for i in order]
    labels = [labels[i] for i in order]
    start = datetime(2025, 3, 1, tzinfo=timezone.utc)
    traffic = logged(r, questions, labels, rng, start)
    label_of = dict(zip((q.request_id for q in traffic), labels, strict=True))
    began = time.perf_counter()
    report = find_gaps(r, traffic)
    mining_s = time.perf_counter() - began
    misses = [q for q in traffic if miss_reason(q, DEFAULT_LOW_MARGIN) is not None]
    point_labels = [label_of[q.request_id] for q in misses]
    where = {m.request_id: i for i, c in enumerate(report.clusters) for m in c.members}
    point_clusters = [where.get(q.request_id, -1) for q in misses]
    per_topic = {}
    for topic in topics:
        name = topic["topic"]
        scores = topic_scores(point_labels, point_clusters, name)
        mined = len(halves[name][0])
        asked = labels.count(name)
        scores["mined_questions"] = mined
        scores["asked"] = asked
        scores["recall_of_asked"] = round(scores["recall"] * scores["points"] / asked, 4)
        cluster = report.clusters[scores["cluster"]] if scores["cluster"] is not None else None
        scores["cluster_id"] = cluster.id if cluster else None
        scores["proposal"] = cluster.proposal.to_dict() if cluster else None
        scores["kind"] = topic["kind"]
        per_topic[name] = scores
    cluster_labels_ = []
    decisions = []
    for cluster in report.clusters:
        counts = Counter(label_of[m.request_id] for m in cluster.members)
        label, count = counts.most_common(1)[0]
        cluster_labels_.append(label)
        decisions.append(editor(label, cluster.proposal, kinds))
    # before/after on the held-out halves and on the bundled evaluation set
    before = {}
    for topic in topics:
        name = topic["topic"]
        before[name] = held_out_scores(r, halves[name][1], {topic["entry"]} - {None})
    bg_before = held_out_scores_bg(r, bg_questions, bg_labels)
    new_entries_of: dict[str, set[str]] = {}
    applied = []
    for cluster, label, decision in zip(report.clusters, cluster_labels_, decisions, strict=True):
        if decision != "accept":
            continue
        if cluster.proposal.kind == "add_alts":
            entry = apply_proposal(r, cluster)
        else:
            entry = apply_proposal(
                r,
                cluster,
                entry_id=f"gap-{cluster.id}",
                category="gaps",
                answer="（待人工撰写的答案）This answer is written by a person after review.",
            )
            new_entries_of.setdefault(label, set()).add(entry.id)
        r.update(entry)
        applied.append(
            {
                "cluster": cluster.id,
                "label": label,
                "kind": cluster.proposal.kind,
                "entry": entry.id,
            }
        )
    after = {}
    for topic in topics:
        name = topic["topic"]
        right = {topic["entry"]} if topic["kind"] == "covered" else new_entries_of.get(name, set())
        after[name] = held_out_scores(r, halves[name][1], right)
    bg_after = held_out_scores_bg(r, bg_questions, bg_labels)
    return (
        {
            "seed": SEED,
            "repeats": repeats,
            "feedback_share": FEEDBACK_SHARE,
            "traffic": len(traffic),
            "traffic_decisions": dict(Counter(q.decision for q in traffic)),
            "feedback": dict(Counter(str(q.helpful) for q in traffic)),
            "report": {
                "considered": report.considered,
                "misses": report.misses,
                "refused_left_out": report.refused,
                "clusters": len(report.clusters),
                "noise": report.noise,
                "noise_share": round(report.noise / report.misses, 4),
                "mining_seconds": round(mining_s, 2),
            },
            "per_topic": per_topic,
            "overall": _overall(per_topic, topics),
            "clusters": [
                {
                    "id": c.id,
                    "size": c.size,
                    "majority_label": label,
                    "kind": c.proposal.kind,
                    "nearest_entry": c.nearest_entry,
                    "score": round(c.score, 4),
                    "top_entry_share": round(c.top_entry_share, 3),
                    "editor": decision,
                    "representatives": list(c.representatives),
                }
                for c, label, decision in zip(
                    report.clusters, cluster_labels_, decisions, strict=True
                )
            ],
            "editor": dict(Counter(decisions)),
            "applied": applied,
            "held_out_before": before,
            "held_out_after": after,
            "held_out_summary": _summary(before, after, topics),
            "eval_set_before": bg_before,
            "eval_set_after": bg_after,
            "refused_in_clusters": sum(
                1 for c in report.clusters for m in c.members if m.decision == "refuse"
            ),
        },
        traffic,
        [label_of[q.request_id] for q in traffic],
    )


def held_out_scores_bg(r: FAQRetriever, questions: list[str], labels: list[str]) -> dict:
    answers = [r.answer(q) for q in questions]
    in_domain = [(a, label) for a, label in zip(answers, labels, strict=True) if label != OOD]
    n = len(in_domain)
    return {
        "in_domain": n,
        "r_at_1": round(
            sum(bool(a.candidates) and a.candidates[0].id == label for a, label in in_domain) / n, 4
        ),
        "answered_right": round(
            sum(a.hit is not None and a.hit.id == label for a, label in in_domain) / n, 4
        ),
        "answer_rate_out_of_domain": round(
            sum(
                a.decision == "answer"
                for a, label in zip(answers, labels, strict=True)
                if label == OOD
            )
            / max(1, labels.count(OOD)),
            4,
        ),
    }


def _overall(per_topic: dict, topics: list[dict]) -> dict:
    out = {}
    for kind in ("uncovered", "covered", "all"):
        names = [t["topic"] for t in topics if kind in ("all", t["kind"])]
        rows = [per_topic[n] for n in names]
        out[kind] = {
            "topics": len(rows),
            "one_cluster": sum(r["one_cluster"] for r in rows),
            "mean_purity": round(statistics.mean(r["purity"] for r in rows), 4),
            "mean_recall": round(statistics.mean(r["recall"] for r in rows), 4),
            "mean_recall_of_asked": round(statistics.mean(r["recall_of_asked"] for r in rows), 4),
        }
    return out


def _summary(before: dict, after: dict, topics: list[dict]) -> dict:
    out = {}
    for kind in ("uncovered", "covered", "all"):
        names = [t["topic"] for t in topics if kind in ("all", t["kind"])]
        total = sum(before[n]["questions"] for n in names)

        def pooled(side: dict, key: str, names: list[str] = names, total: int = total) -> float:
            return round(sum(side[n][key] * side[n]["questions"] for n in names) / total, 4)

        out[kind] = {
            "questions": total,
            **{
                f"{key}_before": pooled(before, key)
                for key in ("answer_rate", "r_at_1", "answered_right")
            },
            **{
                f"{key}_after": pooled(after, key)
                for key in ("answer_rate", "r_at_1", "answered_right")
            },
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gaps.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    began = time.perf_counter()
    r = FAQRetriever.from_corpus()
    traffic_result, traffic, labels = traffic_run(r, repeats=1)
    repeated_result, _, _ = traffic_run(FAQRetriever.from_corpus(), repeats=REPEATS)
    base = FAQRetriever.from_corpus()  # part 1 on the corpus as bundled
    bg_questions, _ = background(base)
    bg_count = len(bg_questions)
    background_traffic, background_labels = traffic[:0], []
    for q, label in zip(traffic, labels, strict=True):
        if label in {t["topic"] for t in read_topics()}:
            continue
        background_traffic.append(q)
        background_labels.append(label)
    assert len(background_traffic) == bg_count
    noise = [
        (q, label)
        for q, label in zip(background_traffic, background_labels, strict=True)
        if miss_reason(q, DEFAULT_LOW_MARGIN) is not None
    ]
    result = {
        "model": base.encoder.name,
        "threshold": base.threshold,
        "defaults": {
            "clustering": {k: getattr(DEFAULT_CLUSTERING, k) for k in GRID},
            "low_margin": DEFAULT_LOW_MARGIN,
            "bar_delta": DEFAULT_BAR_DELTA,
            "min_share": DEFAULT_MIN_SHARE,
        },
        "parameters": {
            "low_margin": dev_margin(base, background_traffic, background_labels),
            "clustering": dev_clustering(
                base, [q for q, _ in noise], [label for _, label in noise]
            ),
            "bar": dev_bar(),
        },
        "traffic": traffic_result,
        "traffic_repeated": repeated_result,
        "seconds": round(time.perf_counter() - began, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(
        json.dumps(
            {k: result["traffic"][k] for k in ("report", "overall", "held_out_summary", "editor")},
            ensure_ascii=False,
            indent=1,
        )
    )
    print(json.dumps(result["parameters"]["clustering"]["default"], indent=1))
    print(json.dumps(result["parameters"]["clustering"]["best"][:5], indent=1))


if __name__ == "__main__":
    main()
