"""Part 1 of ``benchmarks/gaps.py``: how the defaults of :mod:`walletfaq.quality.gaps` were
chosen, on development tasks that share nothing with the planted traffic topics.

- clustering: groups of 6 texts (question and alt questions) of 15 bundled entries (seeded
  sample, 10 seeds) among real background misses; every HDBSCAN setting of :data:`GRID` is
  scored by the groups recovered as one cluster (purity >= 0.8, recall >= 0.5, not split);
- the add_alts bar: 40 bundled entries (A) with their alt questions removed from the corpus --
  the alt questions then ask a covered question in other words, the proposal should be
  add_alts to that entry -- and (B) removed entirely -- a gap, the proposal should be
  new_entry; every (``min_share``, ``bar_delta``) is scored by the share of right proposals;
- the low margin: right and wrong answers of the bundled evaluation set below each margin.
"""

from __future__ import annotations

import itertools
import random
import statistics
from collections import Counter
from dataclasses import replace

import numpy as np

from walletfaq import FAQRetriever
from walletfaq.encoders.protocol import as_unit_rows
from walletfaq.errors import GapError
from walletfaq.quality.gaps import (
    DEFAULT_CLUSTERING,
    Clustering,
    TrafficQuestion,
    encode_questions,
)
from walletfaq.quality.gaps.clustering import cluster_labels

SEED = 19
DEV_SEEDS = tuple(range(1, 11))
DEV_GROUPS, DEV_GROUP_SIZE, BAR_ENTRIES = 15, 6, 40
PURITY_BAR, RECALL_BAR = 0.8, 0.5
GRID = {
    "min_cluster_size": (2, 3, 4, 5),
    "min_samples": (None, 1, 2, 3),
    "epsilon": (0.0, 0.1, 0.35),
    "method": ("eom", "leaf"),
    "metric": ("euclidean", "cosine"),
    "allow_single_cluster": (False, True),
}
BAR_DELTAS = tuple(round(float(x), 3) for x in np.arange(-0.07, 0.0201, 0.005))
MIN_SHARES = (0.0, 0.25, 0.5)


# ----------------------------------------------------------------------------- scoring
def topic_scores(labels_of_points: list[str], cluster_of_points: list[int], topic: str) -> dict:
    """Purity and recall of ``topic``'s dominant cluster among the clustered points."""
    members = [
        c for label, c in zip(labels_of_points, cluster_of_points, strict=True) if label == topic
    ]
    total = len(members)
    clustered = Counter(c for c in members if c >= 0)
    if not clustered:
        return {
            "points": total,
            "cluster": None,
            "purity": 0.0,
            "recall": 0.0,
            "one_cluster": False,
            "split_into": 0,
        }
    best, count = clustered.most_common(1)[0]
    size = sum(1 for c in cluster_of_points if c == best)
    purity, recall = count / size, count / total
    dominated = [
        c
        for c in clustered
        if Counter(
            lab for lab, cc in zip(labels_of_points, cluster_of_points, strict=True) if cc == c
        ).most_common(1)[0][0]
        == topic
    ]
    return {
        "points": total,
        "cluster": best,
        "purity": round(purity, 4),
        "recall": round(recall, 4),
        "one_cluster": purity >= PURITY_BAR and recall >= RECALL_BAR and len(dominated) <= 1,
        "split_into": len(dominated),
    }


# ----------------------------------------------------------------------------- part 1
def dev_clustering(r: FAQRetriever, noise: list[TrafficQuestion], noise_labels: list[str]) -> dict:
    """Score every setting of :data:`GRID` on seeded groups of entry texts among real misses."""
    entries = [e for e in r.corpus if not e.id.startswith("hotline-")]
    noise_vectors = encode_questions(r, [q.question for q in noise])
    tasks = []
    for seed in DEV_SEEDS:
        rng = random.Random(seed)
        picked = rng.sample(entries, DEV_GROUPS)
        texts, labels = [], []
        for entry in picked:
            for text in rng.sample(list(entry.questions()), DEV_GROUP_SIZE):
                texts.append(text)
                labels.append(entry.id)
        vectors = np.concatenate([encode_questions(r, texts), noise_vectors])
        tasks.append((vectors, labels + noise_labels, [e.id for e in picked]))
    rows: list[dict] = []
    errors: list[dict] = []
    keys = list(GRID)
    for values in itertools.product(*GRID.values()):
        setting = dict(zip(keys, values, strict=True))
        if (
            setting["min_samples"] is not None
            and setting["min_samples"] > setting["min_cluster_size"]
        ):
            continue
        clustering = Clustering(**setting)
        found, purity, recall, noise_share, spurious = [], [], [], [], []
        failed = False
        for vectors, labels, groups in tasks:
            try:
                clusters = cluster_labels(vectors, clustering).tolist()
            except GapError:  # scikit-learn issue 33219 (epsilon > 0)
                failed = True
                break
            scores = [topic_scores(labels, clusters, g) for g in groups]
            found.append(sum(s["one_cluster"] for s in scores) / len(groups))
            purity.append(statistics.mean(s["purity"] for s in scores))
            recall.append(statistics.mean(s["recall"] for s in scores))
            noise_share.append(clusters.count(-1) / len(clusters))
            majority = {
                c: Counter(
                    lab for lab, cc in zip(labels, clusters, strict=True) if cc == c
                ).most_common(1)[0][0]
                for c in set(clusters)
                if c >= 0
            }
            spurious.append(sum(1 for lab in majority.values() if lab not in groups))
        if failed:
            errors.append(setting)
            continue
        rows.append(
            {
                **{k: v for k, v in setting.items()},
                "found_one_cluster": round(statistics.mean(found), 4),
                "mean_purity": round(statistics.mean(purity), 4),
                "mean_recall": round(statistics.mean(recall), 4),
                "noise_share": round(statistics.mean(noise_share), 4),
                "other_clusters": round(statistics.mean(spurious), 2),
            }
        )
    rows.sort(key=lambda row: (-row["found_one_cluster"], -row["mean_purity"], -row["mean_recall"]))
    same, other = split_centroids(tasks)
    default = {k: getattr(DEFAULT_CLUSTERING, k) for k in keys}
    return {
        "groups_per_seed": DEV_GROUPS,
        "group_size": DEV_GROUP_SIZE,
        "seeds": list(DEV_SEEDS),
        "noise_points": len(noise),
        "settings_scored": len(rows),
        "settings_failed": errors,
        "best": rows[:15],
        "default": next(row for row in rows if all(row[k] == v for k, v in default.items())),
        "by_metric": _best_by(rows, "metric"),
        "by_method": _best_by(rows, "method"),
        "by_min_cluster_size": _best_by(rows, "min_cluster_size"),
        "by_min_samples": _best_by(rows, "min_samples"),
        "by_epsilon": _best_by(rows, "epsilon"),
        "by_allow_single_cluster": _best_by(rows, "allow_single_cluster"),
        "centroid_cosine_between_clusters": {
            "same_group": {"pairs": len(same), **(_quantiles(same) if same else {})},
            "different_groups": {"pairs": len(other), **_quantiles(other)},
        },
    }


def split_centroids(tasks: list) -> tuple[list[float], list[float]]:
    """With the default settings: the cosine of the centroids of two clusters whose majority
    is the same group (a group split in two) and of two clusters of different groups (could
    split clusters be merged back by centroid similarity?)."""
    same: list[float] = []
    other: list[float] = []
    for vectors, labels, _ in tasks:
        clusters = cluster_labels(vectors, DEFAULT_CLUSTERING)
        found = sorted(set(clusters.tolist()) - {-1})
        centroid = {c: as_unit_rows(vectors[clusters == c].mean(axis=0))[0] for c in found}
        majority = {
            c: Counter(np.asarray(labels)[clusters == c].tolist()).most_common(1)[0][0]
            for c in found
        }
        for a, b in itertools.combinations(found, 2):
            (same if majority[a] == majority[b] else other).append(float(centroid[a] @ centroid[b]))
    return same, other


def _best_by(rows: list[dict], key: str) -> dict[str, dict]:
    """The best row (rows are sorted best first) for each value of ``key``."""
    best: dict[str, dict] = {}
    for row in rows:
        best.setdefault(str(row[key]), row)
    return best


def dev_bar(seed: int = SEED) -> dict:
    """Score each ``bar_delta`` of :data:`BAR_DELTAS` on entries made uncovered (removed) or
    covered-in-other-words (alt questions removed)."""
    covered = FAQRetriever.from_corpus()
    uncovered = FAQRetriever.from_corpus()
    entries = [
        e for e in covered.corpus if not e.id.startswith("hotline-") and len(e.alt_questions) >= 6
    ]
    picked = random.Random(seed).sample(entries, BAR_ENTRIES)
    for entry in picked:
        covered.update(replace(entry, alt_questions=()))
    uncovered.remove([e.id for e in picked])
    cases = []
    for entry in picked:
        for kind, r in (("covered", covered), ("uncovered", uncovered)):
            vectors = encode_questions(r, list(entry.alt_questions))
            centroid = vectors.mean(axis=0, keepdims=True)
            (hits,) = r.search_vectors(centroid, 1, texts=[entry.alt_questions[0]])
            own = [h[0].id for h in r.search_vectors(vectors, 1, texts=list(entry.alt_questions))]
            share = own.count(hits[0].id) / len(own)
            cases.append(
                {
                    "entry": entry.id,
                    "kind": kind,
                    "nearest": hits[0].id,
                    "score": round(hits[0].score, 4),
                    "share": round(share, 3),
                    "threshold": r.threshold,
                }
            )
    grid = []
    for min_share, delta in itertools.product(MIN_SHARES, BAR_DELTAS):
        right: Counter[str] = Counter()
        for case in cases:
            belongs = (
                not case["nearest"].startswith("hotline-")
                and case["score"] >= case["threshold"] - delta
                and case["share"] > min_share
            )
            if case["kind"] == "covered":
                right["covered"] += belongs and case["nearest"] == case["entry"]
            else:
                right["uncovered"] += not belongs
        grid.append(
            {
                "min_share": min_share,
                "bar_delta": float(delta),
                "covered_right": right["covered"] / BAR_ENTRIES,
                "uncovered_right": right["uncovered"] / BAR_ENTRIES,
                "balanced": round((right["covered"] + right["uncovered"]) / (2 * BAR_ENTRIES), 4),
            }
        )
    grid.sort(key=lambda row: (-row["balanced"], abs(row["bar_delta"]), row["min_share"]))
    scores = {k: [c["score"] for c in cases if c["kind"] == k] for k in ("covered", "uncovered")}
    return {
        "entries": BAR_ENTRIES,
        "threshold": covered.threshold,
        "covered_centroid_score": _quantiles(scores["covered"]),
        "uncovered_centroid_score": _quantiles(scores["uncovered"]),
        "covered_nearest_is_entry": sum(
            c["nearest"] == c["entry"] for c in cases if c["kind"] == "covered"
        )
        / BAR_ENTRIES,
        "grid": grid,
        "cases": cases,
    }


def _quantiles(values: list[float]) -> dict[str, float]:
    q = np.quantile(values, [0.1, 0.25, 0.5, 0.75, 0.9])
    return dict(
        zip(("p10", "p25", "p50", "p75", "p90"), (round(float(v), 4) for v in q), strict=True)
    )


def dev_margin(r: FAQRetriever, traffic: list[TrafficQuestion], labels: list[str]) -> dict:
    """How many right and wrong answers of the background fall below each low margin."""
    answered = [
        (q, label)
        for q, label in zip(traffic, labels, strict=True)
        if q.decision == "answer" and q.margin is not None
    ]
    rows = []
    for margin in (0.005, 0.01, 0.015, 0.02, 0.03):
        right = sum(1 for q, label in answered if q.margin < margin and q.top_entry == label)
        wrong = sum(1 for q, label in answered if q.margin < margin and q.top_entry != label)
        rows.append(
            {"low_margin": margin, "right_answers_below": right, "wrong_answers_below": wrong}
        )
    return {
        "answered": len(answered),
        "wrong_answers": sum(1 for q, label in answered if q.top_entry != label),
        "grid": rows,
    }
