"""Corpus doctor: find what in an FAQ corpus hurts retrieval, and say what to do about it.

:func:`doctor` works from the retriever's own index rows (the vectors search compares
questions with), so its findings describe what search actually does:

- ``shared-question``: the same text (after cleaning, Traditional → Simplified, case and
  punctuation folding) is a question of two entries; search cannot tell them apart on it.
- ``misplaced-question``: *leave-one-out*: a question or alt question sits closer to a text
  of another entry than to any other text of its own entry. A user phrasing their question
  like it (but not verbatim) is likely to get the other entry.
- ``near-duplicate``: two entries whose texts keep landing in each other (many misplaced
  texts between them) or whose centroids are unusually close: merge them, or make their
  questions say what sets them apart.
- ``category-confusion``: a category whose texts are often misplaced into another category's
  entries (the category filter and per-category reports suffer).
- ``too-few-questions``: an entry with fewer than :data:`MIN_ALT_QUESTIONS` alt questions.
- ``redundant-questions``: an entry whose alt questions are near-copies of each other (they
  add no new phrasing).
- ``repeated-question``: the same text twice in one entry (a wasted row).
- ``confusable-ids``: ids that a person can mistake for each other (equal after NFKC, case
  folding and look-alike folding, :func:`walletfaq.data.ids.id_skeleton`: ``top-up`` /
  ``top_up``, ``l0gin`` / ``login``): an editor or an API client may change the wrong entry.

Similarities are cosines of the index rows. Embedding models spread cosines very
differently (multilingual-e5 puts almost everything between 0.8 and 1; a character-hashing
encoder between 0 and 1), so gaps are measured in units of the corpus' own *paraphrase
distance*: the median, over all texts, of ``1 - cosine`` to the closest other text of the same
entry (:attr:`DoctorReport.paraphrase_distance`). A gap of one unit means "as far as two
paraphrases of one entry typically are".

Hotline entries generated from a contacts directory (``hotline-<id>``) only answer questions
that name their wallet (see :mod:`walletfaq.data.contacts`); the doctor applies the same gate, and
does not compare two generated hotline entries with each other (their questions are one
template filled with different wallet names, and the name gate keeps them apart).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from walletfaq.data.corpus import Corpus
from walletfaq.data.ids import id_skeleton
from walletfaq.data.normalize import clean_text
from walletfaq.errors import WalletFAQError
from walletfaq.quality.doctor.neighbours import (
    _BLOCK_CELLS,
    _blocked_entries,
    _centroids,
    _generated_hotlines,
    _Nearest,
    _nearest,
    _Rows,
    _rows,
)
from walletfaq.quality.doctor.report import DoctorReport, Finding, _severity

if TYPE_CHECKING:
    from walletfaq.encoders.protocol import Encoder
    from walletfaq.retrieval.retriever import FAQRetriever

logger = logging.getLogger(__name__)

MIN_ALT_QUESTIONS = 3
"""Entries with fewer alt questions are reported: one or two phrasings cover few of the ways
users ask (the bundled entries have 9 or more; the README's tiny example has 1-2)."""

MISPLACED_GAP_SLOPE = 0.5
"""Severity of a misplaced text is ``0.2 + MISPLACED_GAP_SLOPE * gap`` (capped at
:data:`MISPLACED_MAX_SEVERITY`), the gap (other entry's best cosine minus own entry's best) in
paraphrase-distance units: any positive gap is low, from 0.4 units it is medium, and the larger
the gap the higher it ranks among the mediums."""

MISPLACED_MAX_SEVERITY = 0.65
"""Cap of a misplaced text's severity: medium, never high. Measured on the bundled corpus and
evaluation set (``benchmarks/doctor_vs_eval.py``, e5-small): the evaluation queries of an entry
with a misplaced text one unit or more away went to the rival entry the finding names in 7 of
198 cases (3.5 %; 1.4 % below half a unit), and missed at rank 1 in 23 (11.6 %, against 5.6 %
over all queries). A misplaced text marks an entry worth a look, rarely a wrong answer; "high"
is kept for what does cost answers: the same question in two entries, near-duplicate entries,
a category whose texts land elsewhere in bulk."""

NEAR_DUPLICATE_SHARE = 0.3
"""Two entries are near-duplicates when at least this share of their texts (both entries'
together) are misplaced into the other one: nearly a third of their phrasings would be
answered by the wrong one of the two. Severity is ``0.25 + share`` (0.55 at the threshold,
high from a share of 0.45)."""

NEAR_DUPLICATE_CENTROID_RATIO = 0.5
"""Two entries are also near-duplicates when the cosine distance of their centroids (mean of
their unit text vectors, renormalised) is at most this fraction of the median distance of an
entry's centroid to its nearest other entry: twice as close as neighbouring entries usually
are (severity 0.6)."""

REDUNDANT_RATIO = 0.5
"""An entry's texts are redundant when their mean pairwise cosine distance is at most this
fraction of the median over entries: its alt questions vary half as much as a typical entry's,
so they add little that the main question does not already cover (severity 0.45)."""

CATEGORY_MIN_TEXTS = 5
"""A category pair is reported only when at least this many texts are misplaced between
them (fewer are better read as individual ``misplaced-question`` findings)."""

CATEGORY_CONFUSION_RATE = 0.05
"""... and when they are at least this share of the source category's texts. Severity is
``4 × share`` (capped at 0.9): 5 % is low, 10 % medium, 17.5 % high."""

MAX_LISTED_TEXTS = 6
"""Aggregate findings (near-duplicates, category confusion) list at most this many texts."""


def doctor(
    source: FAQRetriever | Corpus | str | Path | None = None,
    *,
    model: str | Path | Encoder | None = None,
) -> DoctorReport:
    """Examine a corpus for what hurts retrieval: conflicting, misplaced and redundant texts.

    Args:
        source: a built :class:`~walletfaq.retrieval.retriever.FAQRetriever` (its index is
            examined as is), a :class:`Corpus` or a JSONL corpus path (a retriever is built with
            :meth:`FAQRetriever.from_corpus`, reusing the cached index), or ``None`` for the
            bundled corpus with its hotline entries.
        model: the model to embed a corpus with (ignored for a retriever); ``None`` = the
            default model.

    Returns:
        A :class:`DoctorReport` whose findings are sorted worst first.

    Raises:
        WalletFAQError: ``source`` is of another type; ``model`` given with a retriever.
        CorpusError: the corpus file is missing or malformed.
    """
    from walletfaq.retrieval.retriever import FAQRetriever

    if isinstance(source, FAQRetriever):
        if model is not None:
            raise WalletFAQError(
                "doctor: model= applies to a corpus, not to a built retriever (whose index "
                "was embedded with its own model); pass the corpus instead, or leave model out"
            )
        retriever = source
    elif source is None or isinstance(source, (Corpus, str, Path)):
        retriever = FAQRetriever.from_corpus(source, model=model)
    else:
        raise WalletFAQError(
            f"doctor expects an FAQRetriever, a Corpus, a corpus path or None, got "
            f"{type(source).__name__}"
        )
    return _examine(retriever)


# ----------------------------------------------------------------------------- analysis


def _examine(retriever: FAQRetriever) -> DoctorReport:
    corpus = retriever.corpus
    rows = _rows(retriever)
    generated = _generated_hotlines(retriever)
    nearest = _nearest(rows, _blocked_entries(retriever, rows, generated), len(corpus))
    has_sibling = np.isfinite(nearest.own)
    scale = float(np.median(1.0 - nearest.own[has_sibling])) if has_sibling.any() else 1.0
    scale = max(scale, 1e-6)
    misplaced = has_sibling & (nearest.other > nearest.own)

    findings: list[Finding] = []
    shared_keys, shared_findings = _shared_questions(corpus, retriever.normalizer)
    findings += shared_findings
    findings += _repeated_questions(corpus, retriever.normalizer, generated)
    findings += _misplaced(corpus, rows, nearest, misplaced, scale, shared_keys, retriever)
    findings += _near_duplicates(corpus, rows, nearest, misplaced, generated)
    findings += _category_confusion(corpus, rows, nearest, misplaced)
    findings += _too_few(corpus)
    findings += _redundant(corpus, rows, generated)
    findings += _confusable_ids(corpus)
    findings.sort(key=lambda f: (-f.severity, f.kind, f.entry_ids, f.texts))
    report = DoctorReport(
        findings=tuple(findings),
        model=retriever.encoder.name,
        source=corpus.source,
        n_entries=len(corpus),
        n_texts=int(len(rows.probes)),
        paraphrase_distance=scale,
    )
    logger.info(
        "doctor: %d findings (%d high) over %d entries",
        len(report),
        report.counts.get("high", 0),
        len(corpus),
    )
    return report


_PUNCTUATION = re.compile(r"[\W_]+", re.UNICODE)


def _text_key(text: str, normalizer: object) -> str:
    """Texts equal under this key are the same question to a user: cleaned, Traditional →
    Simplified (as search does), NFKC, case-folded, without punctuation and spaces."""
    text = clean_text(text)
    if callable(normalizer):
        text = str(normalizer(text))
    return _PUNCTUATION.sub("", unicodedata.normalize("NFKC", text).casefold())


def _shared_questions(corpus: Corpus, normalizer: object) -> tuple[set[str], list[Finding]]:
    owners: dict[str, dict[str, str]] = defaultdict(dict)  # key -> entry id -> text
    for entry in corpus:
        for text in entry.questions():
            owners[_text_key(text, normalizer)].setdefault(entry.id, text)
    findings = []
    shared = {key for key, entries in owners.items() if len(entries) > 1 and key}
    for key in sorted(shared):
        entries = owners[key]
        severity, label = _severity(1.0)
        listed = ", ".join(f"{eid}: {text!r}" for eid, text in entries.items())
        findings.append(
            Finding(
                kind="shared-question",
                severity=severity,
                label=label,
                entry_ids=tuple(entries),
                texts=tuple(entries.values()),
                similarity=1.0,
                advice=(
                    f"the same question is in {len(entries)} entries ({listed}); keep it only "
                    "in the entry that answers it, or merge the entries if they answer the same"
                ),
            )
        )
    return shared, findings


def _repeated_questions(
    corpus: Corpus, normalizer: object, generated: dict[int, str]
) -> list[Finding]:
    """Texts equal to another text of the same entry under :func:`_text_key`. Generated hotline
    entries are skipped: their texts come from the contacts' names and aliases ("alipay",
    "ali pay"), to be edited there."""
    findings = []
    for position, entry in enumerate(corpus):
        if position in generated:
            continue
        seen: dict[str, str] = {}
        for text in entry.questions():
            # texts of only punctuation, symbols or emoji all have the empty key: compare
            # those as written ("？？" and "！！" are not one question)
            key = _text_key(text, normalizer) or "\0" + clean_text(text)
            if key not in seen:
                seen[key] = text
                continue
            severity, label = _severity(0.15)
            cleaned = clean_text(text)
            traditional = callable(normalizer) and normalizer(cleaned) != cleaned
            converted = " (search converts questions to Simplified Chinese first)"
            findings.append(
                Finding(
                    kind="repeated-question",
                    severity=severity,
                    label=label,
                    entry_ids=(entry.id,),
                    texts=(seen[key], text),
                    similarity=1.0,
                    category=entry.category,
                    advice=(
                        f"{entry.id} lists {text!r} and {seen[key]!r}, the same question to "
                        f"search{converted if traditional else ''}: remove one, or "
                        "replace it with a new phrasing"
                    ),
                )
            )
    return findings


def _misplaced(
    corpus: Corpus,
    rows: _Rows,
    nearest: _Nearest,
    misplaced: np.ndarray,
    scale: float,
    shared_keys: set[str],
    retriever: FAQRetriever,
) -> list[Finding]:
    entries = corpus.entries
    findings = []
    for i in np.flatnonzero(misplaced).tolist():
        row = int(rows.probes[i])
        text = rows.texts[row]
        if _text_key(text, retriever.normalizer) in shared_keys:
            continue  # already a shared-question finding
        entry = entries[int(rows.owner[row])]
        rival = entries[int(nearest.other_entry[i])]
        rival_text = rows.texts[int(nearest.other_row[i])]
        own, other = float(nearest.own[i]), float(nearest.other[i])
        gap = (other - own) / scale
        severity, label = _severity(min(MISPLACED_MAX_SEVERITY, 0.2 + MISPLACED_GAP_SLOPE * gap))
        findings.append(
            Finding(
                kind="misplaced-question",
                severity=severity,
                label=label,
                entry_ids=(entry.id, rival.id),
                texts=(text, rival_text),
                similarity=other,
                category=entry.category,
                advice=(
                    f"{text!r} ({entry.id}) is closer to {rival.id}'s {rival_text!r} (cos "
                    f"{other:.3f}) than to any other text of {entry.id} ({own:.3f}): questions "
                    f"phrased like it may get {rival.id}. If {rival.id} answers it, move it "
                    f"there; otherwise reword it with what sets {entry.id} apart and add more "
                    "phrasings of this kind to it"
                ),
            )
        )
    return findings


def _near_duplicates(
    corpus: Corpus,
    rows: _Rows,
    nearest: _Nearest,
    misplaced: np.ndarray,
    generated: dict[int, str],
) -> list[Finding]:
    n_entries = len(corpus)
    if n_entries < 2:
        return []
    counts = np.bincount(rows.owner[rows.probes], minlength=n_entries)
    crossing: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i in np.flatnonzero(misplaced).tolist():
        a, b = int(rows.owner[rows.probes[i]]), int(nearest.other_entry[i])
        crossing[(min(a, b), max(a, b))].append(i)

    centroids = _centroids(rows, n_entries)
    both_generated = np.zeros(n_entries, dtype=bool)
    both_generated[list(generated)] = True
    block = max(1, _BLOCK_CELLS // n_entries)
    nearest_distance = np.empty(n_entries, dtype=np.float32)
    for first in range(0, n_entries, block):  # pass 1: each entry's nearest other entry
        sims = centroids[first : first + block] @ centroids.T
        sims[np.arange(sims.shape[0]), np.arange(first, first + sims.shape[0])] = -np.inf
        nearest_distance[first : first + block] = 1.0 - sims.max(axis=1)
    cutoff = NEAR_DUPLICATE_CENTROID_RATIO * float(np.median(nearest_distance))
    close: dict[tuple[int, int], float] = {}
    for first in range(0, n_entries, block):  # pass 2: pairs closer than the cutoff
        sims = centroids[first : first + block] @ centroids.T
        for i, j in zip(*np.nonzero(1.0 - sims <= cutoff), strict=True):
            a, b = first + int(i), int(j)
            if a < b:
                close[(a, b)] = float(sims[i, j])

    findings = []
    for a, b in sorted(set(crossing) | set(close)):
        if both_generated[a] and both_generated[b]:
            continue  # generated hotline entries: kept apart by the wallet-name gate
        share = len(crossing.get((a, b), ())) / max(1, int(counts[a] + counts[b]))
        if share < NEAR_DUPLICATE_SHARE and (a, b) not in close:
            continue
        value = 0.25 + share if share >= NEAR_DUPLICATE_SHARE else 0.0
        severity, label = _severity(max(value, 0.6 if (a, b) in close else 0.0))
        centroid = float(centroids[a] @ centroids[b])
        first_id, second_id = corpus.entries[a].id, corpus.entries[b].id
        examples = [rows.texts[int(rows.probes[i])] for i in crossing.get((a, b), ())]
        findings.append(
            Finding(
                kind="near-duplicate",
                severity=severity,
                label=label,
                entry_ids=(first_id, second_id),
                texts=tuple(examples[:MAX_LISTED_TEXTS]),
                similarity=centroid,
                category=corpus.entries[a].category,
                advice=(
                    f"{first_id} and {second_id} are hard to tell apart ({share:.0%} of their "
                    f"texts sit closer to the other entry; centroid cos {centroid:.3f}): merge "
                    "them if they answer the same question, otherwise make their questions name "
                    "what differs (the situation, the action, the money flow)"
                ),
            )
        )
    return findings


def _category_confusion(
    corpus: Corpus, rows: _Rows, nearest: _Nearest, misplaced: np.ndarray
) -> list[Finding]:
    categories = [entry.category for entry in corpus]
    texts_per_category = Counter(categories[int(rows.owner[row])] for row in rows.probes)
    pairs: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i in np.flatnonzero(misplaced).tolist():
        source = categories[int(rows.owner[rows.probes[i]])]
        target = categories[int(nearest.other_entry[i])]
        if source != target:
            pairs[(source, target)].append(i)
    findings = []
    for (source, target), members in sorted(pairs.items()):
        rate = len(members) / texts_per_category[source]
        if len(members) < CATEGORY_MIN_TEXTS or rate < CATEGORY_CONFUSION_RATE:
            continue
        severity, label = _severity(min(0.9, 4 * rate))
        entry_pairs = Counter(
            (
                corpus.entries[int(rows.owner[rows.probes[i]])].id,
                corpus.entries[int(nearest.other_entry[i])].id,
            )
            for i in members
        )
        involved = dict.fromkeys(eid for pair, _ in entry_pairs.most_common() for eid in pair)
        worst = ", ".join(f"{a} → {b} ({n})" for (a, b), n in entry_pairs.most_common(3))
        findings.append(
            Finding(
                kind="category-confusion",
                severity=severity,
                label=label,
                entry_ids=tuple(involved),
                texts=tuple(rows.texts[int(rows.probes[i])] for i in members[:MAX_LISTED_TEXTS]),
                similarity=None,
                category=f"{source} → {target}",
                advice=(
                    f"{len(members)} texts of category {source!r} ({rate:.0%}) sit closer to "
                    f"entries of {target!r}, mostly {worst}; fix those misplaced-question "
                    "findings, or move the entries if they belong to the other category"
                ),
            )
        )
    return findings


def _too_few(corpus: Corpus) -> list[Finding]:
    findings = []
    for entry in corpus:
        have = len(entry.alt_questions)
        if have >= MIN_ALT_QUESTIONS:
            continue
        severity, label = _severity(0.5 if have == 0 else 0.3)
        findings.append(
            Finding(
                kind="too-few-questions",
                severity=severity,
                label=label,
                entry_ids=(entry.id,),
                texts=entry.questions(),
                similarity=None,
                category=entry.category,
                advice=(
                    f"{entry.id} has {have} alt question(s); add at least "
                    f"{MIN_ALT_QUESTIONS - have} more, in the words users use (colloquial, "
                    "short, with typos, English or Traditional Chinese where users write so)"
                ),
            )
        )
    return findings


def _redundant(corpus: Corpus, rows: _Rows, generated: dict[int, str]) -> list[Finding]:
    spread: dict[int, float] = {}
    probe_owner = rows.owner[rows.probes]
    for position in range(len(corpus)):
        vectors = rows.vectors[rows.probes[probe_owner == position]]
        n = len(vectors)
        if n < 3:  # too few texts to judge their variety (too-few-questions covers them)
            continue
        gram = vectors @ vectors.T
        spread[position] = float((gram.sum() - np.trace(gram)) / (n * (n - 1)))
    if len(spread) < 2:
        return []
    typical = float(np.median([1.0 - mean for mean in spread.values()]))
    findings = []
    for position, mean in spread.items():
        if position in generated or 1.0 - mean > REDUNDANT_RATIO * typical:
            continue
        entry = corpus.entries[position]
        severity, label = _severity(0.45)
        findings.append(
            Finding(
                kind="redundant-questions",
                severity=severity,
                label=label,
                entry_ids=(entry.id,),
                texts=entry.questions()[:MAX_LISTED_TEXTS],
                similarity=mean,
                category=entry.category,
                advice=(
                    f"the texts of {entry.id} are near-copies of each other (mean cos "
                    f"{mean:.3f}; a typical entry's {1.0 - typical:.3f}): replace some alt "
                    "questions with different wordings of the same need (colloquial, "
                    "situational, short keywords, other languages)"
                ),
            )
        )
    return findings


def _confusable_ids(corpus: Corpus) -> list[Finding]:
    """One finding per group of ids with the same :func:`id_skeleton` (they read alike)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for entry in corpus:
        groups[id_skeleton(entry.id)].append(entry.id)
    findings = []
    for ids in groups.values():
        if len(ids) < 2:
            continue
        severity, label = _severity(0.4)
        listed = ", ".join(repr(entry_id) for entry_id in ids)
        findings.append(
            Finding(
                kind="confusable-ids",
                severity=severity,
                label=label,
                entry_ids=tuple(ids),
                texts=tuple(corpus[entry_id].question for entry_id in ids),
                similarity=None,
                advice=(
                    f"the ids {listed} read alike (0/o, 1/l, _/-, rn/m, case); an editor or an "
                    "API client may change the wrong entry: rename all but one so that they "
                    "differ in a way a reader sees"
                ),
            )
        )
    return findings
