"""Domain tuning: adapt a retriever to labelled questions of its own domain.

:func:`tune` learns a small map on top of the frozen encoder
(:class:`~walletfaq.encoders.adapted.AdaptedEncoder`) from three kinds of labelled data, plus the
corpus' own alternative questions:

- an evaluation file (JSONL ``{"query": str, "gold": [entry ids]}``, the format of
  :func:`walletfaq.quality.evaluation.evaluate.load_queries`): which entry answered which user question;
- a pair file (TSV or CSV with the header ``sentence1, sentence2, label``; ``label`` 1 = same
  meaning, 0 = a hard negative: close in wording, different in meaning);
- a list of ``(question, paraphrase)`` tuples.

The corpus itself is training data too: every question and alt question of one entry are
paraphrases of each other (``use_corpus_alts``).

A seeded share (``holdout``) of the labelled data is held out, never trained on nor used for
early stopping, and measured before and after tuning:

- evaluation data: the held-out queries are ranked against the corpus entries (each entry
  scored by its best row, as :meth:`FAQRetriever.ask` does); MRR@10 and recall@1.
- pair data: paraphrase clusters (connected components of the positive pairs) are split, so
  no held-out sentence or paraphrase of one is trained on. For every held-out positive pair,
  its ``sentence1`` is ranked against every other sentence of the held-out clusters (label-0
  partners included, as distractors); gold = the members of its own cluster. MRR@10, R@1.

Training is in-batch InfoNCE (each anchor against every positive of the batch plus its hard
negative, paraphrases of the same cluster masked out), optionally symmetric, with an L2 pull
of the map towards the identity and early stopping on a validation slice carved from the
training part. It works on precomputed base vectors, so it takes seconds; the corpus is not
re-encoded (the new index rows are the old ones transformed).

``method="finetune"`` reads and splits the data the same way, then trains the encoder itself
(:mod:`walletfaq.quality.tuning.finetune`).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from walletfaq.data.corpus import index_texts, read_text_file
from walletfaq.data.normalize import lone_surrogate
from walletfaq.encoders.adapted import APPLY_TO, AdaptedEncoder, ApplyTo
from walletfaq.errors import CorpusError, WalletFAQError

if TYPE_CHECKING:
    from walletfaq.retrieval.hybrid import HybridRetriever
    from walletfaq.retrieval.retriever import FAQRetriever

logger = logging.getLogger(__name__)

TuneMethod = Literal["adapter", "finetune"]
"""``"adapter"``: a linear map on frozen embeddings; ``"finetune"``: the encoder's transformer
layers trained with sentence-transformers' trainer (:mod:`walletfaq.quality.tuning.finetune`)."""

PAIR_COLUMNS = ("sentence1", "sentence2", "label")
"""Header a pair file must have (extra columns are ignored)."""

ENCODE_CHUNK = 256
"""Texts encoded per call while embedding the training data (one progress-bar step)."""


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class AdapterSettings:
    """How the adapter is trained. Defaults are the recipe measured best
    (benchmarks/README.md, "Domain tuning").

    Attributes:
        rank: ``None`` = a full ``dim × dim`` map initialised at the identity; an int = the
            residual low-rank map ``W = I + A B`` of that rank (``A`` starts at zero).
        bias: learn a bias vector too.
        apply_to: ``"both"`` (questions and FAQ texts) or ``"queries"``.
        epochs: maximum passes over the training pairs.
        patience: stop after this many epochs without a better validation MRR@10 (the best
            epoch's weights are kept); ``0`` = no early stopping, train every epoch.
        batch_size: pairs per batch (in-batch negatives).
        lr: AdamW learning rate.
        temperature: InfoNCE temperature.
        identity_decay: weight of ``||W - I||²`` in the loss (keeps the map near the base).
        symmetric: also the loss of positives against anchors.
        hard_negatives: use the label-0 pairs of a pair file as extra negatives (measured no
            gain on BQ, off by default).
        mined_negatives: add, for each anchor, the most similar training text of another
            cluster as an extra negative (mined once with the base vectors).
        use_corpus_alts: train on question ↔ alt-question pairs of the corpus entries.
        validation: share of the training clusters set apart for early stopping.
    """

    rank: int | None = None
    bias: bool = False
    apply_to: ApplyTo = "both"
    epochs: int = 40
    patience: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    temperature: float = 0.05
    identity_decay: float = 0.0
    symmetric: bool = True
    hard_negatives: bool = False
    mined_negatives: bool = False
    use_corpus_alts: bool = True
    validation: float = 0.1

    def checked(self) -> AdapterSettings:
        """Return ``self`` after validating every field (raises :class:`WalletFAQError`)."""

        def bad(name: str, expected: str) -> WalletFAQError:
            return WalletFAQError(
                f"tune setting {name}={getattr(self, name)!r} is invalid; expected {expected}"
            )

        if self.rank is not None and (not is_int(self.rank) or self.rank < 1):
            raise bad("rank", "None or a positive int")
        if self.apply_to not in APPLY_TO:
            raise bad("apply_to", f"one of {list(APPLY_TO)}")
        if not is_int(self.epochs) or self.epochs < 1:
            raise bad("epochs", "a positive int")
        if not is_int(self.batch_size) or self.batch_size < 2:
            raise bad("batch_size", "an int ≥ 2 (each pair's negatives are the batch's others)")
        if not is_int(self.patience) or self.patience < 0:
            raise bad("patience", "an int ≥ 0")
        for name in ("lr", "temperature"):
            value = getattr(self, name)
            if not is_number(value) or not value > 0:
                raise bad(name, "a positive number")
        if not is_number(self.identity_decay) or not self.identity_decay >= 0:
            raise bad("identity_decay", "a finite number ≥ 0")
        if not is_number(self.validation) or not 0 <= self.validation < 0.5:
            raise bad("validation", "a number in [0, 0.5)")
        not_bool = first_non_bool(
            self, ("bias", "symmetric", "hard_negatives", "mined_negatives", "use_corpus_alts")
        )
        if not_bool is not None:
            raise bad(not_bool, "True or False")
        return self


def is_int(value: object) -> bool:
    """Whether a setting is an int (``True``/``False`` are not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """Whether a setting is a finite int or float (``True``/``False`` are not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def first_non_bool(settings: object, names: Sequence[str]) -> str | None:
    """The first of ``names`` whose value on ``settings`` is not ``True``/``False``."""
    return next((name for name in names if not isinstance(getattr(settings, name), bool)), None)


# --------------------------------------------------------------------------- results


@dataclass
class TuneResult:
    """What :func:`tune` returns.

    Attributes:
        retriever: a new retriever over the same corpus whose encoder is the
            :class:`AdaptedEncoder` or :class:`~walletfaq.encoders.finetuned.FinetunedEncoder` (the
            original is untouched); for a :class:`~walletfaq.HybridRetriever`, a new hybrid
            whose encoders are tuned (and whose weights are fitted, see :func:`tune`).
        before: metrics of the original retriever on the held-out split
            (``{"mrr@10", "recall@1", "queries"}``; empty when ``holdout == 0``).
        after: the same metrics for the tuned retriever.
        train_size: training pairs (corpus alt pairs included), before the validation slice.
        holdout_size: held-out queries measured.
        seconds: wall time of the whole call (encoding included).
        method: ``"adapter"`` or ``"finetune"``.
        settings: the settings used (JSON-ready), plus ``epochs_run`` and ``best_epoch``
            (adapter) or ``steps`` and ``prompts`` (finetune); for a hybrid also
            ``weights`` and ``weights_fitted``.
        holdout_queries: the held-out query texts, cleaned and normalised as the retriever
            reads questions (never trained on: evaluate on these, not on the rest).
    """

    retriever: FAQRetriever | HybridRetriever
    before: dict[str, float]
    after: dict[str, float]
    train_size: int
    holdout_size: int
    seconds: float
    method: str
    settings: dict[str, Any] = field(default_factory=dict)
    holdout_queries: tuple[str, ...] = ()

    @property
    def encoder(self) -> Any:
        """The tuned encoder of :attr:`retriever` (:class:`AdaptedEncoder` or
        :class:`~walletfaq.encoders.finetuned.FinetunedEncoder`)."""
        return self.retriever.encoder  # type: ignore[return-value]

    def summary(self) -> str:
        """One line per metric, before → after."""
        lines = [
            f"tuned with {self.method} on {self.train_size} pairs in {self.seconds:.1f} s; "
            f"held out: {self.holdout_size} queries"
        ]
        for key in ("mrr@10", "recall@1"):
            if key in self.before:
                lines.append(f"  {key:9s} {self.before[key]:.4f} → {self.after[key]:.4f}")
        return "\n".join(lines)


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
        source: where the data came from (a path or ``"<tuples>"``).
    """

    kind: Literal["queries", "pairs"]
    texts: tuple[str, ...]
    positives: tuple[tuple[int, int], ...]
    negatives: tuple[tuple[int, int], ...] = ()
    gold: tuple[tuple[str, ...], ...] = ()
    source: str = "<tuples>"

    def summary(self) -> dict[str, object]:
        """JSON-ready counts."""
        return {
            "source": self.source,
            "kind": self.kind,
            "texts": len(self.texts),
            "positives": len(self.positives),
            "negatives": len(self.negatives),
        }


def load_tuning_data(
    data: str | Path | Sequence[tuple[str, str]], corpus_ids: Sequence[str] | None = None
) -> TuningData:
    """Read tuning data: an evaluation JSONL file, a pair TSV/CSV file, or ``(q, p)`` tuples.

    Args:
        data: a ``.jsonl``/``.json`` path (evaluation format), a ``.tsv``/``.csv``/``.txt``
            path (pair format; the delimiter is the header's), or a list of tuples.
        corpus_ids: the ids gold labels must belong to (checked when given).

    Raises:
        CorpusError: unreadable file, missing header column, empty sentence, a label other
            than 0/1, a gold id not in the corpus, a tuple that is not two non-empty strings,
            or no positive example at all (file, line and field named).
    """
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
    def __init__(self, source: str) -> None:
        self.source = source
        self.position: dict[str, int] = {}
        self.positives: list[tuple[int, int]] = []
        self.negatives: list[tuple[int, int]] = []
        self.gold: list[tuple[str, ...]] = []

    def text(self, value: str) -> int:
        value = value.strip()
        return self.position.setdefault(value, len(self.position))

    def pair(self, first: str, second: str, label: int) -> None:
        a, b = self.text(first), self.text(second)
        if a == b:
            return  # a sentence paired with itself teaches nothing
        (self.positives if label == 1 else self.negatives).append((a, b))

    def build(self, kind: Literal["queries", "pairs"]) -> TuningData:
        if not self.positives:
            raise CorpusError(
                "no positive example (label-1 pair or query with a gold entry); tuning needs some",
                path=None if self.source == "<tuples>" else self.source,
            )
        return TuningData(
            kind,
            tuple(self.position),
            tuple(self.positives),
            tuple(self.negatives),
            tuple(self.gold),
            self.source,
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
    builder = _Builder(str(path))
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
    from walletfaq.data.queries import numbered_queries

    known = set(corpus_ids) if corpus_ids is not None else None
    builder = _Builder(str(path))
    skipped = 0
    for number, (line, query) in enumerate(numbered_queries(path), start=1):
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
            "%s: %d out-of-domain queries (gold: []) carry no positive; not used", path, skipped
        )
    return builder.build("queries")


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


# --------------------------------------------------------------------------- metrics


def retrieval_metrics(
    queries: np.ndarray,
    rows: np.ndarray,
    row_item: np.ndarray,
    gold: Sequence[set[int]],
    exclude: Sequence[int] | None = None,
    k: int = 10,
) -> dict[str, float]:
    """MRR@k and recall@1 of ranking items (each scored by its best row) for each query.

    Args:
        queries: ``(n, d)`` unit query vectors.
        rows: ``(m, d)`` unit candidate rows.
        row_item: ``(m,)`` item of each row.
        gold: the gold items of each query.
        exclude: an item to leave out of each query's ranking (the query itself), or ``-1``.
        k: MRR cutoff.

    Returns:
        ``{"mrr@10": ..., "recall@1": ..., "queries": n}`` (``mrr@{k}``).
    """
    n_items = int(row_item.max()) + 1 if len(row_item) else 0
    reciprocal, first = [], []
    for start in range(0, len(queries), 512):
        scores = queries[start : start + 512] @ rows.T
        per_item = _max_per_item(scores, row_item, n_items)
        for offset in range(scores.shape[0]):
            i = start + offset
            item_scores = per_item[offset]
            if exclude is not None and exclude[i] >= 0:
                item_scores[exclude[i]] = -np.inf
            golds = np.fromiter(gold[i], dtype=np.int64)
            best_gold = item_scores[golds].max()
            rank = 1 + int((item_scores > best_gold).sum())
            reciprocal.append(1.0 / rank if rank <= k else 0.0)
            first.append(1.0 if rank == 1 else 0.0)
    return {
        f"mrr@{k}": float(np.mean(reciprocal)) if reciprocal else math.nan,
        "recall@1": float(np.mean(first)) if first else math.nan,
        "queries": float(len(reciprocal)),
    }


def _max_per_item(scores: np.ndarray, row_item: np.ndarray, n_items: int) -> np.ndarray:
    order = np.argsort(row_item, kind="stable")
    sorted_items = row_item[order]
    starts = np.flatnonzero(np.r_[True, sorted_items[1:] != sorted_items[:-1]])
    reduced = np.maximum.reduceat(scores[:, order], starts, axis=1)
    out = np.full((scores.shape[0], n_items), -np.inf, dtype=np.float32)
    out[:, sorted_items[starts]] = reduced
    return out


# --------------------------------------------------------------------------- problem


@dataclass
class _Problem:
    """Everything training and measuring need, as arrays over one matrix of base vectors.

    ``vectors`` holds the encoded data texts, then the corpus rows. Each example is an
    (anchor, positive, negative or -1) triple of row positions in ``vectors`` with a group:
    two examples of one group are paraphrases, never each other's negatives.
    """

    vectors: np.ndarray
    anchor: np.ndarray
    positive: np.ndarray
    negative: np.ndarray
    group: np.ndarray
    validation: np.ndarray  # bool per example
    holdout_queries: np.ndarray  # positions in vectors
    holdout_rows: np.ndarray  # positions in vectors: the candidates
    holdout_item: np.ndarray  # item of each candidate row
    holdout_gold: list[set[int]]
    holdout_exclude: list[int] | None
    candidates_are_corpus: bool
    data_examples: int


def _prepare(
    data: TuningData,
    text_vectors: np.ndarray,
    corpus_rows: np.ndarray,
    row_entry: np.ndarray,
    entry_ids: Sequence[str],
    settings: AdapterSettings,
    holdout: float,
    rng: np.random.Generator,
) -> _Problem:
    n_texts = len(data.texts)
    vectors = np.vstack([text_vectors, corpus_rows]).astype(np.float32)
    entry_group_base = n_texts  # groups of corpus entries live after the text components
    anchors: list[int] = []
    positives: list[int] = []
    negatives: list[int] = []
    groups: list[int] = []
    held: set[int] = set()  # text positions that are held out

    if data.kind == "pairs":
        component = _components(n_texts, data.positives)
        pair_component = np.asarray([component[a] for a, _ in data.positives])
        held_components = set(_split_groups(pair_component, holdout, rng).tolist())
        held = {t for t in range(n_texts) if component[t] in held_components}
        negative_of: dict[int, list[int]] = {}
        if settings.hard_negatives:
            for a, b in data.negatives:
                if a in held or b in held:
                    continue  # never train on a held-out sentence
                negative_of.setdefault(a, []).append(b)
                negative_of.setdefault(b, []).append(a)
        for a, b in data.positives:
            if a in held:
                continue
            for x, y in ((a, b), (b, a)) if not settings.symmetric else ((a, b),):
                anchors.append(x)
                positives.append(y)
                options = negative_of.get(x, [])
                negatives.append(options[int(rng.integers(len(options)))] if options else -1)
                groups.append(int(component[x]))
        queries = sorted({a for a, _ in data.positives if a in held})
        candidates = sorted(held)
        item = {text: i for i, text in enumerate(candidates)}
        holdout_gold = [
            {item[t] for t in candidates if component[t] == component[q] and t != q}
            for q in queries
        ]
        holdout_rows = np.asarray(candidates, dtype=np.int64)
        holdout_item = np.arange(len(candidates), dtype=np.int64)
        holdout_exclude: list[int] | None = [item[q] for q in queries]
        candidates_are_corpus = False
    else:
        position = {entry_id: i for i, entry_id in enumerate(entry_ids)}
        text_of = np.asarray([q for q, _ in data.positives])
        held_texts = set(_split_groups(text_of, holdout, rng).tolist())
        held = held_texts
        first_row: dict[int, list[int]] = {}
        for row, entry in enumerate(row_entry):
            first_row.setdefault(int(entry), []).append(row)
        queries = []
        holdout_gold = []
        for (query, _), gold in zip(data.positives, data.gold, strict=True):
            entries = [position[g] for g in gold]
            if query in held:
                queries.append(query)
                holdout_gold.append(set(entries))
                continue
            for entry in entries:
                for row in first_row[entry]:
                    anchors.append(query)
                    positives.append(n_texts + row)
                    negatives.append(-1)
                    groups.append(entry_group_base + entry)
        holdout_rows = n_texts + np.arange(len(corpus_rows), dtype=np.int64)
        holdout_item = np.asarray(row_entry, dtype=np.int64)
        holdout_exclude = None
        candidates_are_corpus = True
    data_examples = len(anchors)

    if settings.use_corpus_alts:
        for entry in np.unique(row_entry):
            rows = np.flatnonzero(row_entry == entry)
            for i, first in enumerate(rows):
                for second in rows[i + 1 :]:
                    anchors.append(n_texts + int(first))
                    positives.append(n_texts + int(second))
                    negatives.append(-1)
                    groups.append(entry_group_base + int(entry))

    anchor = np.asarray(anchors, dtype=np.int64)
    group = np.asarray(groups, dtype=np.int64)
    negative = np.asarray(negatives, dtype=np.int64)
    if settings.mined_negatives and len(anchor):
        negative = _mine_negatives(vectors, anchor, np.asarray(positives), group, negative)
    validation = np.zeros(len(anchor), dtype=bool)
    if settings.validation > 0 and len(np.unique(group)) > 2:
        picked = set(_split_groups(group, settings.validation, rng).tolist())
        validation = np.asarray([g in picked for g in group], dtype=bool)
    if not len(anchor) or validation.all():
        raise WalletFAQError(
            "no training pair is left after holding out the evaluation split; give more "
            "labelled data or a smaller holdout"
        )
    return _Problem(
        vectors=vectors,
        anchor=anchor,
        positive=np.asarray(positives, dtype=np.int64),
        negative=negative,
        group=group,
        validation=validation,
        holdout_queries=np.asarray(queries, dtype=np.int64),
        holdout_rows=holdout_rows,
        holdout_item=holdout_item,
        holdout_gold=holdout_gold,
        holdout_exclude=holdout_exclude,
        candidates_are_corpus=candidates_are_corpus,
        data_examples=data_examples,
    )


def _mine_negatives(
    vectors: np.ndarray,
    anchor: np.ndarray,
    positive: np.ndarray,
    group: np.ndarray,
    negative: np.ndarray,
) -> np.ndarray:
    """For anchors without a labelled negative: the most similar positive of another group
    (base vectors), from the training examples themselves."""
    out = negative.copy()
    pool = np.unique(positive)
    pool_group = np.full(len(pool), -1, dtype=np.int64)
    lookup = {int(p): i for i, p in enumerate(pool)}
    for p, g in zip(positive, group, strict=True):
        pool_group[lookup[int(p)]] = g
    pool_vectors = vectors[pool]
    for start in range(0, len(anchor), 1024):
        scores = vectors[anchor[start : start + 1024]] @ pool_vectors.T
        same = pool_group[None, :] == group[start : start + 1024, None]
        scores[same] = -np.inf
        best = pool[np.argmax(scores, axis=1)]
        chunk = out[start : start + 1024]
        chunk[chunk < 0] = best[chunk < 0]
    return out


# --------------------------------------------------------------------------- training


def _holdout_metrics(
    problem: _Problem, weight: np.ndarray | None, bias: np.ndarray | None, apply_to: ApplyTo
) -> dict[str, float]:
    if not len(problem.holdout_queries):
        return {}
    queries = problem.vectors[problem.holdout_queries]
    rows = problem.vectors[problem.holdout_rows]
    if weight is not None:
        queries = _apply(queries, weight, bias)
        if apply_to == "both":
            rows = _apply(rows, weight, bias)
    return retrieval_metrics(
        queries, rows, problem.holdout_item, problem.holdout_gold, problem.holdout_exclude
    )


def _apply(vectors: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    mapped = vectors @ weight.T
    if bias is not None:
        mapped = mapped + bias
    norms = np.linalg.norm(mapped, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (mapped / norms).astype(np.float32)


def _validation_metric(
    problem: _Problem, weight: np.ndarray, bias: np.ndarray | None, apply_to: ApplyTo
) -> float:
    """MRR@10 of the validation anchors ranking the validation positives (gold = own group)."""
    chosen = np.flatnonzero(problem.validation)
    if not len(chosen):
        return math.nan
    pool, first = np.unique(problem.positive[chosen], return_index=True)
    pool_group = problem.group[chosen][first]
    anchors, anchor_first = np.unique(problem.anchor[chosen], return_index=True)
    anchor_group = problem.group[chosen][anchor_first]
    queries = _apply(problem.vectors[anchors], weight, bias)
    rows = problem.vectors[pool]
    if apply_to == "both":
        rows = _apply(rows, weight, bias)
    item = np.arange(len(pool), dtype=np.int64)
    gold = [set(np.flatnonzero(pool_group == g).tolist()) for g in anchor_group]
    exclude = [int(np.searchsorted(pool, a)) if a in set(pool.tolist()) else -1 for a in anchors]
    keep = [i for i, g in enumerate(gold) if g - {exclude[i]}]
    if not keep:
        return math.nan
    return retrieval_metrics(
        queries[keep], rows, item, [gold[i] for i in keep], [exclude[i] for i in keep]
    )["mrr@10"]


def _train_adapter(
    problem: _Problem, settings: AdapterSettings, seed: int, progress: bool
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Train the map; returns ``(weight, bias, log)``. Only training examples (not the
    validation slice, never the holdout) contribute gradients."""
    import torch
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed + 1)
    dim = problem.vectors.shape[1]
    vectors = torch.from_numpy(problem.vectors)
    train = np.flatnonzero(~problem.validation)
    eye = torch.eye(dim)
    if settings.rank is None:
        full = torch.nn.Parameter(torch.eye(dim))
        params = [full]
    else:
        left = torch.nn.Parameter(torch.zeros(dim, settings.rank))
        right = torch.nn.Parameter(torch.randn(settings.rank, dim) / math.sqrt(dim))
        params = [left, right]
    bias = torch.nn.Parameter(torch.zeros(dim)) if settings.bias else None
    if bias is not None:
        params.append(bias)

    def weight() -> torch.Tensor:
        return full if settings.rank is None else eye + left @ right

    def mapped(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        y = x @ w.T
        if bias is not None:
            y = y + bias
        return torch.nn.functional.normalize(y, dim=1)

    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    batches_per_epoch = max(1, math.ceil(len(train) / settings.batch_size))

    def step(batch: np.ndarray) -> float:
        w = weight()
        a = mapped(vectors[problem.anchor[batch]], w)
        p_raw = vectors[problem.positive[batch]]
        p = mapped(p_raw, w) if settings.apply_to == "both" else p_raw
        groups = torch.from_numpy(problem.group[batch])
        same = groups[:, None] == groups[None, :]
        same.fill_diagonal_(False)
        logits = (a @ p.T) / settings.temperature
        logits = logits.masked_fill(same, float("-inf"))
        neg_index = problem.negative[batch]
        has_neg = neg_index >= 0
        columns = [logits]
        if has_neg.any():
            n_raw = vectors[neg_index[has_neg]]
            n = mapped(n_raw, w) if settings.apply_to == "both" else n_raw
            neg_logits = (a @ n.T) / settings.temperature
            columns.append(neg_logits)
        target = torch.arange(len(batch))
        loss = torch.nn.functional.cross_entropy(torch.cat(columns, dim=1), target)
        if settings.symmetric:
            loss = 0.5 * (loss + torch.nn.functional.cross_entropy(logits.T, target))
        if settings.identity_decay > 0:
            loss = loss + settings.identity_decay * ((w - eye) ** 2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    def snapshot() -> tuple[np.ndarray, np.ndarray | None]:
        with torch.no_grad():
            w = weight().detach().numpy().astype(np.float32).copy()
            b = bias.detach().numpy().astype(np.float32).copy() if bias is not None else None
        return w, b

    best_w, best_b = snapshot()
    best_score = _validation_metric(problem, best_w, best_b, settings.apply_to)
    start_score = best_score
    best_epoch = 0
    history: list[dict[str, float]] = []
    bar = tqdm(range(1, settings.epochs + 1), desc="tuning", unit="epoch", disable=not progress)
    stale = 0
    epochs_run = 0
    for epoch in bar:
        order = rng.permutation(train)
        losses = [
            step(order[i * settings.batch_size : (i + 1) * settings.batch_size])
            for i in range(batches_per_epoch)
            if len(order[i * settings.batch_size : (i + 1) * settings.batch_size]) > 1
        ]
        epochs_run = epoch
        w, b = snapshot()
        score = _validation_metric(problem, w, b, settings.apply_to)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "val_mrr@10": score})
        bar.set_postfix(loss=f"{np.mean(losses):.3f}", val=f"{score:.3f}")
        if math.isnan(score) or settings.patience == 0:
            best_w, best_b, best_epoch = w, b, epoch
            continue
        if score > best_score:
            best_w, best_b, best_score, best_epoch, stale = w, b, score, epoch, 0
        else:
            stale += 1
            if stale >= settings.patience:
                break
    bar.close()
    log = {
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "validation_mrr@10_start": start_score,
        "validation_mrr@10_best": best_score,
        "history": history,
    }
    return best_w, best_b, log


# --------------------------------------------------------------------------- entry point


def _encode_texts(encoder: Any, texts: Sequence[str], progress: bool) -> np.ndarray:
    """Base query vectors of ``texts`` (batched when the encoder can), with a progress bar and
    a time estimate logged after the first chunk."""
    from tqdm.auto import tqdm

    from walletfaq.encoders.protocol import as_unit_rows

    if not texts:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    encode = getattr(encoder, "encode_queries_bulk", encoder.encode_queries)
    chunks = []
    started = time.perf_counter()
    with tqdm(
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


def tune(
    retriever: FAQRetriever | HybridRetriever,
    data: str | Path | Sequence[tuple[str, str]],
    *,
    method: TuneMethod = "adapter",
    holdout: float = 0.2,
    epochs: int | None = None,
    seed: int = 0,
    progress: bool = True,
    **settings: Any,
) -> TuneResult:
    """Adapt ``retriever`` to labelled questions of its domain; returns a new retriever.

    Args:
        retriever: the retriever to adapt (left unchanged). A
            :class:`~walletfaq.HybridRetriever`'s encoders are tuned, each with its own
            adapter on the same data, split and seed (with ``"finetune"``, only the primary
            is fine-tuned: the others keep their vectors); BM25 stays as it is. With
            evaluation-format data its channel
            weights are then fitted (:meth:`~walletfaq.HybridRetriever.fit_weights`) on the
            training queries, and ``before``/``after`` are the hybrid's metrics on the
            held-out queries. Pair data says nothing about which entry answers a question,
            so with pairs the weights are kept and ``before``/``after`` are the primary's.
        data: an evaluation JSONL file (``{"query", "gold"}``), a pair TSV/CSV file
            (``sentence1, sentence2, label``) or a list of ``(question, paraphrase)`` tuples
            (see the module docstring). The corpus' alt questions are added as training
            pairs unless ``use_corpus_alts=False``.
        method: ``"adapter"`` (a linear map on frozen embeddings, trained in seconds; keeps
            the torch-free question path) or ``"finetune"`` (the model's transformer layers
            trained with sentence-transformers' trainer: minutes to tens of minutes on CPU,
            needs ``sentence-transformers[train]``, and questions then go through torch; see
            :mod:`walletfaq.quality.tuning.finetune`). An adapter can be tuned on a fine-tuned retriever.
        holdout: share of the labelled data held out (seeded split by paraphrase cluster or
            query) and measured before/after; never trained on. ``0`` = no measurement. The
            split depends only on the data, ``holdout`` and ``seed``, so both methods with the
            same ones hold out the same rows.
        epochs: training epochs; ``None`` = the method's default (adapter: at most 40, early
            stopping on a validation slice of the training part may stop sooner; finetune: 1).
        seed: seeds the split, the initialisation and the batch order.
        progress: show progress bars.
        **settings: any field of :class:`AdapterSettings` (``rank``, ``apply_to``, ``lr``...)
            or, for ``"finetune"``, of :class:`walletfaq.quality.tuning.finetune.FinetuneSettings`
            (``batch_size``, ``lr``, ``hard_negatives``, ``max_steps``...).

    Returns:
        A :class:`TuneResult`: the new retriever, held-out metrics before and after, sizes,
        time and settings.

    Raises:
        CorpusError: unreadable or malformed data (file, line and field named).
        WalletFAQError: an unknown method or setting, a bad ``holdout``, or too little data.
    """
    from walletfaq.retrieval.hybrid import HybridRetriever
    from walletfaq.retrieval.retriever import FAQRetriever

    started = time.perf_counter()
    if isinstance(retriever, HybridRetriever):
        return _tune_hybrid(
            retriever,
            data,
            method=method,
            holdout=holdout,
            epochs=epochs,
            seed=seed,
            progress=progress,
            settings=settings,
            started=started,
        )
    if not isinstance(retriever, FAQRetriever):
        raise WalletFAQError(
            f"tune needs a FAQRetriever or HybridRetriever to adapt (e.g. "
            f"FAQRetriever.from_corpus(...)), got {type(retriever).__name__}"
        )
    if method not in ("adapter", "finetune"):
        raise WalletFAQError(f"method must be 'adapter' or 'finetune', got {method!r}")
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0 <= holdout < 1:
        raise WalletFAQError(f"holdout must be a number in [0, 1), got {holdout!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise WalletFAQError(f"seed must be an int ≥ 0, got {seed!r}")
    if method == "finetune":
        return _finetune(retriever, data, holdout, epochs, seed, progress, settings, started)
    options = _method_settings(AdapterSettings, "adapter", epochs, settings)
    rng = np.random.default_rng(seed)

    from walletfaq.index.vector_index import build_index
    from walletfaq.retrieval.questions import clean_question

    corpus = retriever.corpus
    tuning = load_tuning_data(data, corpus.ids)
    texts = [retriever.normalizer(clean_question(text)) for text in tuning.texts]
    _, owners = index_texts(corpus.entries, retriever.index_answers)
    row_entry = np.asarray(owners, dtype=np.int64)
    base_rows = retriever.index.reconstruct_n(0, retriever.index.ntotal)
    logger.info(
        "tuning %s on %s: %d texts to embed, then at most %d epochs",
        retriever.encoder.name,
        tuning.source,
        len(texts),
        options.epochs,
    )
    text_vectors = _encode_texts(retriever.encoder, texts, progress)
    problem = _prepare(
        tuning, text_vectors, base_rows, row_entry, corpus.ids, options, holdout, rng
    )
    n_train = int((~problem.validation).sum())
    if n_train < 2:
        raise WalletFAQError(
            f"only {n_train} training pair(s) after the holdout and validation split; the "
            "adapter learns from in-batch negatives and needs at least 2: give more labelled "
            "data, a smaller holdout or validation, or keep use_corpus_alts=True"
        )
    logger.info(
        "training on %d pairs (%d from the data, %d corpus alt pairs; %d set apart for "
        "early stopping); %d held-out queries; estimated ≤ %.0f s",
        n_train,
        problem.data_examples,
        len(problem.anchor) - problem.data_examples,
        int(problem.validation.sum()),
        len(problem.holdout_queries),
        _estimate_seconds(n_train, problem.vectors.shape[1], options),
    )
    before = _holdout_metrics(problem, None, None, options.apply_to)
    weight, bias, log = _train_adapter(problem, options, seed, progress)
    after = _holdout_metrics(problem, weight, bias, options.apply_to)
    seconds = time.perf_counter() - started
    summary = {
        **asdict(options),
        "seed": seed,
        "holdout": holdout,
        "epochs_run": log["epochs_run"],
        "best_epoch": log["best_epoch"],
    }
    info = {
        "method": "adapter",
        "settings": summary,
        "data": {
            **tuning.summary(),
            "train_pairs": n_train,
            "validation_pairs": int(problem.validation.sum()),
            "corpus_alt_pairs": len(problem.anchor) - problem.data_examples,
            "holdout_queries": len(problem.holdout_queries),
        },
        "metrics": {
            "before": before,
            "after": after,
            **{k: v for k, v in log.items() if k != "history"},
        },
        "seconds": round(seconds, 3),
    }
    encoder = AdaptedEncoder(
        retriever.encoder, weight, bias, apply_to=options.apply_to, info=_json_ready(info)
    )
    index = build_index(encoder.corpus_rows(base_rows), retriever.index_spec)
    tuned = retriever._derived(encoder, index)
    logger.info(
        "tuned in %.1f s: held-out MRR@10 %s → %s (the answer threshold %.3f was calibrated "
        "for the base model: recalibrate with walletfaq.calibrate)",
        seconds,
        f"{before.get('mrr@10', math.nan):.4f}",
        f"{after.get('mrr@10', math.nan):.4f}",
        retriever.threshold,
    )
    return TuneResult(
        retriever=tuned,
        before=before,
        after=after,
        train_size=len(problem.anchor),
        holdout_size=len(problem.holdout_queries),
        seconds=seconds,
        method="adapter",
        settings=summary,
        holdout_queries=tuple(texts[i] for i in problem.holdout_queries),
    )


def _tune_hybrid(
    hybrid: HybridRetriever,
    data: str | Path | Sequence[tuple[str, str]],
    *,
    method: TuneMethod,
    holdout: float,
    epochs: int | None,
    seed: int,
    progress: bool,
    settings: dict[str, Any],
    started: float,
) -> TuneResult:
    """``tune`` of a :class:`~walletfaq.HybridRetriever`: tune its encoders (adapter: every
    one; finetune: the primary), then fit the weights on the training queries of
    evaluation-format data (see :func:`tune`)."""
    from walletfaq.quality.evaluation.evaluate import evaluate
    from walletfaq.retrieval.questions import clean_question

    def tune_member(member: FAQRetriever) -> TuneResult:
        return tune(
            member,
            data,
            method=method,
            holdout=holdout,
            epochs=epochs,
            seed=seed,
            progress=progress,
            **settings,
        )

    primary = hybrid.primary
    result = tune_member(primary)
    # per-encoder maps: every encoder gets its own adapter, on the same data, split and seed
    members = [
        result.retriever,
        *(tune_member(m).retriever if method == "adapter" else m for m in hybrid.members[1:]),
    ]
    tuned = hybrid.with_members(members)  # type: ignore[arg-type]  # members are FAQRetrievers
    before, after = result.before, result.after
    fitted = False
    labelled = load_tuning_data(data, hybrid.corpus.ids)
    if labelled.kind == "queries":
        held = set(result.holdout_queries)
        train: list[dict[str, Any]] = []
        test: list[dict[str, Any]] = []
        for (query, _), gold in zip(labelled.positives, labelled.gold, strict=True):
            text = labelled.texts[query]
            is_held = primary.normalizer(clean_question(text)) in held
            (test if is_held else train).append({"query": text, "gold": list(gold)})
        if train:
            tuned.fit_weights(train)
            fitted = True
        if test:
            before = _report_metrics(evaluate(hybrid, test))  # type: ignore[arg-type]
            after = _report_metrics(evaluate(tuned, test))  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    logger.info(
        "tuned the hybrid's encoders%s in %.1f s: held-out MRR@10 %s → %s",
        " and fitted its weights " + str(tuned.weights) if fitted else "",
        seconds,
        f"{before.get('mrr@10', math.nan):.4f}",
        f"{after.get('mrr@10', math.nan):.4f}",
    )
    return TuneResult(
        retriever=tuned,
        before=before,
        after=after,
        train_size=result.train_size,
        holdout_size=result.holdout_size,
        seconds=seconds,
        method=result.method,
        settings={
            **result.settings,
            "members_tuned": [m.encoder.name for m in hybrid.members]
            if method == "adapter"
            else [primary.encoder.name],
            "weights": dict(tuned.weights),
            "weights_fitted": fitted,
        },
        holdout_queries=result.holdout_queries,
    )


def _report_metrics(report: Any) -> dict[str, float]:
    """``{"mrr@10", "recall@1", "queries"}`` of an :class:`~walletfaq.EvalReport`, the shape
    of :attr:`TuneResult.before`."""
    return {
        "mrr@10": float(report.metrics["mrr@10"]),
        "recall@1": float(report.metrics["recall@1"]),
        "queries": float(len(report.results)),
    }


def _finetune(
    retriever: FAQRetriever,
    data: str | Path | Sequence[tuple[str, str]],
    holdout: float,
    epochs: int | None,
    seed: int,
    progress: bool,
    settings: dict[str, Any],
    started: float,
) -> TuneResult:
    """``method="finetune"``: validate the settings and the training extras before reading
    anything, then hand over to :func:`walletfaq.quality.tuning.finetune.finetune`."""
    from walletfaq.encoders.finetuned import base_model
    from walletfaq.quality.tuning.finetune import (
        FinetuneSettings,
        check_training_available,
        finetune,
    )

    options = _method_settings(FinetuneSettings, "finetune", epochs, settings)
    check_training_available()
    base_model(retriever.encoder)
    tuning = load_tuning_data(data, retriever.corpus.ids)
    return finetune(
        retriever, tuning, options, holdout=holdout, seed=seed, progress=progress, started=started
    )


def _method_settings(kind: Any, method: str, epochs: int | None, settings: dict[str, Any]) -> Any:
    """``kind(epochs=..., **settings).checked()`` (a settings dataclass of a tune method), with
    ``epochs=None`` meaning the method's default and unknown names refused."""
    known = {f for f in kind.__dataclass_fields__ if f != "epochs"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise WalletFAQError(
            f"unknown tune setting(s) {unknown} for method={method!r}; choose from "
            f"{sorted(known)} and epochs"
        )
    return kind(epochs=kind.epochs if epochs is None else epochs, **settings).checked()


def _estimate_seconds(pairs: int, dim: int, settings: AdapterSettings) -> float:
    """Rough upper bound of the training time: measured ≈ 25 µs per pair and epoch at
    dim 384 on one busy core (scales with dim²)."""
    return settings.epochs * pairs * 25e-6 * (dim / 384) ** 2 + 1.0


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _json_ready(value.item())
    return value
