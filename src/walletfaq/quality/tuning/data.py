"""Tuning data: the labelled examples :func:`~walletfaq.quality.tuning.runner.tune` learns from.

Four kinds of labelled data are read into one shape (:class:`TuningData`):

- an evaluation file (JSONL ``{"query": str, "gold": [entry ids]}``, the format of
  :func:`walletfaq.data.queries.load_queries`): which entry answered which user question;
- a pair file (TSV or CSV with the header ``sentence1, sentence2, label``; ``label`` 1 = same
  meaning, 0 = a hard negative: close in wording, different in meaning);
- a list of ``(question, paraphrase)`` tuples;
- labelled queries in memory (:class:`~walletfaq.data.queries.LabelledQuery` objects or
  ``{"query", "gold"}`` dicts), e.g. ``store.labelled_queries()``, or the store of record
  itself (:func:`store_tuning_data`: its query log, where feedback naming an entry, or
  "helpful" on an answered query, labels the question).

The corpus itself is training data too: every question and alt question of one entry are
paraphrases of each other (``use_corpus_alts``).

The held-out split keeps paraphrase clusters whole: the clusters are the connected components
of the positive pairs (:func:`_components`), and whole groups are picked (:func:`_split_groups`),
so no held-out sentence or paraphrase of one is trained on. :func:`_encode_texts` embeds the
data's texts with the base encoder, once, for training on precomputed vectors.
"""

from __future__ import annotations

import csv
import io
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from walletfaq.data.corpus import read_text_file
from walletfaq.data.normalize import lone_surrogate
from walletfaq.data.queries import LabelledQuery, numbered_queries
from walletfaq.errors import CorpusError

if TYPE_CHECKING:
    from datetime import datetime

logger = logging.getLogger(__name__)


PAIR_COLUMNS = ("sentence1", "sentence2", "label")
"""Header a pair file must have (extra columns are ignored)."""

ENCODE_CHUNK = 256
"""Texts encoded per call while embedding the training data (one progress-bar step)."""


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class TuningData:
    """Labelled data in one shape, whatever the input format.

    Attributes:
        kind: ``"queries"`` (evaluation format) or ``"pairs"`` (pair file or tuples).
        texts: every distinct text, in first-seen order.
        positives: ``(anchor, positive)`` text positions (pairs), or ``(query, -1)`` for
            evaluation data, whose positives are corpus entries (``gold``).
        negatives: ``(anchor, negative)`` text positions from label-0 pairs.
        gold: for evaluation data, the gold entry ids of each ``positives`` row.
        source: where the data came from (a path, ``"<tuples>"``, ``"<labelled queries>"``
            or a store's query log).
        self_pairs: pairs left out because both sentences are the same text (they teach
            nothing).
        labelled: for evaluation data, every labelled query read, out-of-domain ones
            (``gold: []``) included (the threshold is recalibrated on some of them).
    """

    kind: Literal["queries", "pairs"]
    texts: tuple[str, ...]
    positives: tuple[tuple[int, int], ...]
    negatives: tuple[tuple[int, int], ...] = ()
    gold: tuple[tuple[str, ...], ...] = ()
    source: str = "<tuples>"
    self_pairs: int = 0
    labelled: tuple[LabelledQuery, ...] = ()

    def summary(self) -> dict[str, object]:
        """JSON-ready counts."""
        return {
            "source": self.source,
            "kind": self.kind,
            "texts": len(self.texts),
            "positives": len(self.positives),
            "negatives": len(self.negatives),
            "self_pairs": self.self_pairs,
        }


class LabelledLog(Protocol):
    """What :func:`store_tuning_data` reads: the store of record
    (:class:`walletfaq.store.Store`), or anything with its ``labelled_queries`` and ``url``."""

    @property
    def url(self) -> str: ...

    def labelled_queries(self, since: datetime | None = None) -> Sequence[LabelledQuery]: ...


TuningSource = (
    str
    | Path
    | Sequence[tuple[str, str]]
    | Sequence[LabelledQuery]
    | Sequence[Mapping[str, Any]]
    | LabelledLog
    | TuningData
)
"""What :func:`load_tuning_data` (and :func:`~walletfaq.tune`) read."""


def load_tuning_data(data: TuningSource, corpus_ids: Sequence[str] | None = None) -> TuningData:
    """Read tuning data: an evaluation JSONL file, a pair TSV/CSV file, ``(q, p)`` tuples,
    labelled queries, or a store's query log.

    Args:
        data: a ``.jsonl``/``.json`` path (evaluation format), a ``.tsv``/``.csv``/``.txt``
            path (pair format; the delimiter is the header's), a list of tuples, a list of
            :class:`~walletfaq.data.queries.LabelledQuery` (or ``{"query", "gold"}`` dicts,
            e.g. ``store.labelled_queries(since)``), the store of record (its whole log:
            :func:`store_tuning_data`), or data already read (returned as it is, its gold
            labels checked against ``corpus_ids``).
        corpus_ids: the ids gold labels must belong to (checked when given; a store's
            labels naming other entries are left out with a warning instead: the log
            outlives entries).

    Raises:
        CorpusError: unreadable file, missing header column, empty sentence, a label other
            than 0/1, a gold id not in the corpus, a tuple that is not two non-empty strings,
            or no positive example at all (file, line and field named).
    """
    if isinstance(data, TuningData):
        _check_gold(data.gold, corpus_ids, data.source)
        return data
    if hasattr(data, "labelled_queries"):
        return store_tuning_data(data, corpus_ids=corpus_ids)  # type: ignore[arg-type]
    if isinstance(data, (str, Path)):
        path = Path(data)
        if path.suffix.lower() in (".jsonl", ".json"):
            return _load_queries_data(path, corpus_ids)
        if path.suffix.lower() in (".tsv", ".csv", ".txt"):
            return _load_pair_file(path)
        raise CorpusError(
            "unknown tuning data format; use a .jsonl evaluation file ({query, gold}) or a "
            ".tsv/.csv pair file with the header sentence1, sentence2, label",
            path=path,
        )
    if isinstance(data, (bytes, Mapping)) or not isinstance(data, Sequence):
        raise CorpusError(
            f"tuning data must be a path or a list of (question, paraphrase) tuples, got "
            f"{type(data).__name__}"
        )
    if data and isinstance(data[0], (LabelledQuery, Mapping)):
        labelled = numbered_queries(data)  # type: ignore[arg-type]  # checked item by item
        return _queries_data(labelled, "<labelled queries>", None, corpus_ids)
    builder = _Builder("<tuples>")
    for number, item in enumerate(data, start=1):
        if (
            not isinstance(item, (tuple, list))
            or len(item) != 2
            or not all(isinstance(t, str) and t.strip() for t in item)
        ):
            raise CorpusError(
                f"item {number} must be a (question, paraphrase) tuple of two non-empty "
                f"strings, got {item!r:.80}",
                line=number,
                field="pair",
            )
        for text in item:
            bad = lone_surrogate(text)
            if bad is not None:
                raise CorpusError(
                    f"item {number} is not valid Unicode text (lone surrogate at character "
                    f"{bad} of {text[:30]!r}); decode the data as UTF-8 first",
                    line=number,
                    field="pair",
                )
        builder.pair(item[0], item[1], 1)
    return builder.build("pairs")


class _Builder:
    def __init__(self, source: str, path: Path | None = None) -> None:
        self.source = source
        self.path = path
        self.position: dict[str, int] = {}
        self.positives: list[tuple[int, int]] = []
        self.negatives: list[tuple[int, int]] = []
        self.gold: list[tuple[str, ...]] = []
        self.self_pairs = 0

    def text(self, value: str) -> int:
        value = value.strip()
        return self.position.setdefault(value, len(self.position))

    def pair(self, first: str, second: str, label: int) -> None:
        a, b = self.text(first), self.text(second)
        if a == b:
            self.self_pairs += 1  # a sentence paired with itself teaches nothing
            return
        (self.positives if label == 1 else self.negatives).append((a, b))

    def build(self, kind: Literal["queries", "pairs"]) -> TuningData:
        if not self.positives:
            raise CorpusError(
                "no positive example (label-1 pair or query with a gold entry); tuning needs some",
                path=self.path,
            )
        if self.self_pairs:
            logger.info(
                "%s: %d pair(s) whose two sentences are the same text left out (they teach "
                "nothing)",
                self.source,
                self.self_pairs,
            )
        return TuningData(
            kind,
            tuple(self.position),
            tuple(self.positives),
            tuple(self.negatives),
            tuple(self.gold),
            self.source,
            self.self_pairs,
        )


def _load_pair_file(path: Path) -> TuningData:
    text = read_text_file(path, "pair file")
    lines = text.splitlines()
    if not lines:
        raise CorpusError(
            "empty pair file; expected a header sentence1, sentence2, label", path=path
        )
    delimiter = "\t" if "\t" in lines[0] else ","
    # a file object, as csv expects (newline=""): a quoted field keeps its line breaks
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    unclosed = (
        "; a field starting with a double quote runs on until the next double quote: close "
        'the quote, or double the quotes inside a quoted field ("" for ")'
    )
    header = [h.strip() for h in next(reader)]
    missing = [c for c in PAIR_COLUMNS if c not in header]
    if missing:
        raise CorpusError(
            f"header {header} lacks column(s) {missing}; the first line must name "
            f"{', '.join(PAIR_COLUMNS)}",
            path=path,
            line=1,
            field=missing[0],
        )
    repeated = [c for c in PAIR_COLUMNS if header.count(c) > 1]
    if repeated:
        raise CorpusError(
            f"header {header} names column {repeated[0]!r} more than once; name each of "
            f"{', '.join(PAIR_COLUMNS)} once",
            path=path,
            line=1,
            field=repeated[0],
        )
    column = {name: header.index(name) for name in PAIR_COLUMNS}
    builder = _Builder(str(path), path)
    number = reader.line_num + 1  # first line of the next record (a quoted field may span lines)
    while True:
        try:
            row = next(reader, None)
        except csv.Error as exc:
            raise CorpusError(
                f"unreadable record ({exc}){unclosed}", path=path, line=number
            ) from None
        if row is None:
            break
        spans_lines = reader.line_num > number
        line, number = number, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            runs_on = f" (the record runs on to line {reader.line_num}{unclosed})"
            raise CorpusError(
                f"{len(row)} columns where the header has {len(header)}"
                + (runs_on if spans_lines else ""),
                path=path,
                line=line,
                field=PAIR_COLUMNS[min(len(row), 2)],
            )
        for name in ("sentence1", "sentence2"):
            if not row[column[name]].strip():
                raise CorpusError("empty sentence", path=path, line=line, field=name)
        label = row[column["label"]].strip()
        if label not in ("0", "1"):
            raise CorpusError(
                f"label must be 0 or 1, got {label!r}", path=path, line=line, field="label"
            )
        builder.pair(row[column["sentence1"]], row[column["sentence2"]], int(label))
    return builder.build("pairs")


def _load_queries_data(path: Path, corpus_ids: Sequence[str] | None) -> TuningData:
    return _queries_data(numbered_queries(path), str(path), path, corpus_ids)


def _queries_data(
    numbered: Sequence[tuple[int, LabelledQuery]],
    source: str,
    path: Path | None,
    corpus_ids: Sequence[str] | None,
) -> TuningData:
    """Evaluation-format data from labelled queries, each with its line (or position)."""
    known = set(corpus_ids) if corpus_ids is not None else None
    builder = _Builder(source, path)
    skipped = 0
    for number, (line, query) in enumerate(numbered, start=1):
        if not query.gold:
            skipped += 1
            continue
        if known is not None:
            unknown = [g for g in query.gold if g not in known]
            if unknown:
                raise CorpusError(
                    f"query {number} ({query.query[:30]!r}) names gold id(s) {unknown} that are "
                    "not in the retriever's corpus; fix the label or tune the matching corpus",
                    path=path,
                    line=line,
                    field="gold",
                )
        builder.positives.append((builder.text(query.query), -1))
        builder.gold.append(query.gold)
    if skipped:
        logger.info(
            "%s: %d out-of-domain queries (gold: []) carry no positive; not used", source, skipped
        )
    return replace(builder.build("queries"), labelled=tuple(query for _, query in numbered))


def store_tuning_data(
    store: LabelledLog,
    since: datetime | None = None,
    corpus_ids: Sequence[str] | None = None,
) -> TuningData:
    """Tuning data from the query log of the store of record: its labelled queries
    (:meth:`Store.labelled_queries <walletfaq.store.Store.labelled_queries>`: feedback that
    names an entry labels the question with it; "helpful" on an answered query labels it with
    the entry given), asked at or after ``since`` (all without).

    Labels naming an entry that is not among ``corpus_ids`` (removed since, or a wrong id in
    the feedback: the store checks only its grammar) are left out, and a
    :class:`~walletfaq.quality.tuning.result.TuningWarning` says how many.

    Raises:
        CorpusError: the log holds no labelled query (over the corpus): collect feedback
            first.
    """
    from walletfaq.quality.tuning.result import TuningWarning

    source = f"the query log of {store.url}"
    labelled = list(store.labelled_queries(since))
    known = set(corpus_ids) if corpus_ids is not None else {g for q in labelled for g in q.gold}
    kept = [q for q in labelled if all(g in known for g in q.gold)]
    if len(kept) < len(labelled):
        stale = sorted({g for q in labelled for g in q.gold if g not in known})
        shown = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
        warnings.warn(
            f"{len(labelled) - len(kept)} of the {len(labelled)} labelled queries in "
            f"{source} name entries that are not in the corpus tuned ({shown}); they are left "
            "out (entries removed since, or a wrong entry_id in the feedback)",
            TuningWarning,
            stacklevel=3,
        )
    if not kept:
        window = "" if since is None else f" since {since.isoformat()}"
        raise CorpusError(
            f"{source} holds no labelled query{window} over this corpus: tuning learns from "
            "feedback that names the right entry (entry_id) or says an answer helped; collect "
            "feedback first (POST /v1/feedback, store.add_feedback)"
        )
    return _queries_data(list(enumerate(kept, start=1)), source, None, corpus_ids)


def _check_gold(
    gold: Sequence[tuple[str, ...]], corpus_ids: Sequence[str] | None, source: str
) -> None:
    """A CorpusError when a gold id of data already read is not among ``corpus_ids``."""
    if corpus_ids is None:
        return
    known = set(corpus_ids)
    unknown = sorted({g for labels in gold for g in labels if g not in known})
    if unknown:
        raise CorpusError(
            f"the tuning data from {source} names gold id(s) {unknown[:5]} that are not in "
            "the retriever's corpus; read it again for this corpus"
        )


# --------------------------------------------------------------------------- splitting


def _components(count: int, edges: Sequence[tuple[int, int]]) -> np.ndarray:
    """Connected-component label of each of ``count`` nodes (union-find)."""
    parent = list(range(count))

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.asarray([find(i) for i in range(count)], dtype=np.int64)


def _split_groups(groups: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask over distinct group labels in ``groups``: which are picked (about
    ``share`` of the items, whole groups only)."""
    labels = np.unique(groups)
    if share <= 0 or len(labels) < 2:
        return np.zeros(0, dtype=np.int64)
    order = rng.permutation(labels)
    sizes = {int(g): int(n) for g, n in zip(*np.unique(groups, return_counts=True), strict=True)}
    target = share * len(groups)
    picked: list[int] = []
    total = 0
    for label in order:
        if total >= target or len(picked) == len(labels) - 1:
            break
        picked.append(int(label))
        total += sizes[int(label)]
    return np.asarray(picked, dtype=np.int64)


# --------------------------------------------------------------------------- embedding


def _encode_texts(encoder: Any, texts: Sequence[str], progress: bool) -> np.ndarray:
    """Base query vectors of ``texts`` (batched when the encoder can), with a progress bar and
    a time estimate logged after the first chunk."""
    from walletfaq._progress import progress_bar
    from walletfaq.encoders.protocol import as_unit_rows

    if not texts:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    encode = getattr(encoder, "encode_queries_bulk", encoder.encode_queries)
    chunks = []
    started = time.perf_counter()
    with progress_bar(
        total=len(texts), desc="embedding tuning data", unit="text", disable=not progress
    ) as bar:
        for start in range(0, len(texts), ENCODE_CHUNK):
            chunk = texts[start : start + ENCODE_CHUNK]
            chunks.append(as_unit_rows(encode(list(chunk))))
            bar.update(len(chunk))
            if start == 0 and len(texts) > ENCODE_CHUNK:
                rate = len(chunk) / max(time.perf_counter() - started, 1e-6)
                logger.info(
                    "embedding %d tuning texts: about %.0f s more at %.0f texts/s",
                    len(texts),
                    (len(texts) - len(chunk)) / rate,
                    rate,
                )
    return np.vstack(chunks)
