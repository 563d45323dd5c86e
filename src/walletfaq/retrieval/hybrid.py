"""Hybrid and ensemble retrieval: dense scores of one or more encoders fused with BM25.

A :class:`HybridRetriever` holds one :class:`~walletfaq.FAQRetriever` per encoder over the
same corpus (the first is the *primary*) and, optionally, a BM25 index over the same texts
(:mod:`walletfaq.retrieval.lexical`). For a question, every channel scores every entry (its
best row, as :meth:`FAQRetriever.ask` does); each channel's entry scores are standardised
per question (z-scores: minus their mean, over their standard deviation) and summed with the
channel weights. Entries are ranked by that sum.

A hit's ``score`` stays the **primary model's cosine similarity** and ``matched`` its
best-matching text, so thresholds and :func:`walletfaq.calibrate` keep their meaning; only
the order comes from the fusion. :meth:`HybridRetriever.fit_weights` chooses the weights from
labelled queries.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from walletfaq.data.atomic import staged_directory, write_json
from walletfaq.data.contacts import ContactDirectory
from walletfaq.data.corpus import Corpus, FAQEntry
from walletfaq.encoders.protocol import Encoder, as_unit_rows
from walletfaq.errors import (
    CorpusError,
    IndexMismatchError,
    IndexWriteError,
    WalletFAQError,
)
from walletfaq.index.search import Answer, Hit
from walletfaq.retrieval.embedding import QuestionEncoding
from walletfaq.retrieval.fusion import (
    DEFAULT_WEIGHTS,
    LEXICAL_CHANNEL,
    WEIGHT_GRID,
    best_rows,
    best_weights,
    checked_grid,
    fuse,
    is_weight,
)
from walletfaq.retrieval.hybrid_manifest import (
    HYBRID_FORMAT,
    HYBRID_FORMAT_VERSION,
    HYBRID_MANIFEST,
    check_replaceable,
    checksum,
    read_manifest,
)
from walletfaq.retrieval.lexical import LexicalIndex, Tokenizer, bundled_lexicon_path, read_lexicon
from walletfaq.retrieval.questions import check_k, clean_question, clean_questions
from walletfaq.retrieval.retriever import FAQRetriever
from walletfaq.retrieval.safety import OnEncoded
from walletfaq.retrieval.state import RetrieverState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _View:
    """One consistent snapshot of every channel (replaced whole by an edit)."""

    members: tuple[RetrieverState, ...]  # each member's state at the time of the snapshot
    matrices: tuple[np.ndarray, ...]  # each member's row vectors
    lexical: LexicalIndex | None
    starts: np.ndarray  # first row of each entry (rows are contiguous per entry)


class HybridRetriever:
    """Fused retrieval over one corpus: several dense encoders and/or BM25.

    Build one with :meth:`from_corpus` (or :meth:`from_retriever` to add channels to an
    existing, e.g. tuned, retriever); ask it like a :class:`~walletfaq.FAQRetriever`.

    Args:
        members: retrievers over the same corpus, one per encoder; the first is the primary.
        lexical: ``"bm25"`` to fuse BM25 scores, or ``None``.
        weights: channel name (a member's model name, or ``"bm25"``) → weight; the primary
            is 1.0 unless given; missing channels take :data:`DEFAULT_WEIGHTS`.
        lexicon: domain words for the BM25 tokenizer: a lexicon file, a list of words, or
            ``None`` for the lexicon bundled with the corpus.
    """

    def __init__(
        self,
        members: Sequence[FAQRetriever],
        *,
        lexical: Literal["bm25"] | None = "bm25",
        weights: Mapping[str, float] | None = None,
        lexicon: str | Path | Sequence[str] | None = None,
    ) -> None:
        members = tuple(members)
        if not members or not all(isinstance(m, FAQRetriever) for m in members):
            raise WalletFAQError("members must be a non-empty list of FAQRetriever objects")
        if lexical not in (LEXICAL_CHANNEL, None):
            raise WalletFAQError(f"lexical must be 'bm25' or None, got {lexical!r}")
        primary = members[0]
        for member in members[1:]:
            if member.corpus.content_hash() != primary.corpus.content_hash():
                raise WalletFAQError(
                    f"member {member.encoder.name!r} was built from another corpus than the "
                    f"primary {primary.encoder.name!r}; build every member from the same corpus"
                )
            if member.index_answers != primary.index_answers:
                raise WalletFAQError("every member must use the same index_answers setting")
        self.members = members
        self.lexical_kind = lexical
        self.terms = _lexicon_terms(lexicon) if lexical else ()
        self.channels = tuple(_channel_names(members, lexical))
        self.weights = self._checked_weights(weights or {})
        self._tokenizer = Tokenizer(self.terms) if lexical else None
        self._edit_lock = threading.Lock()
        self._view = self._snapshot()

    def __repr__(self) -> str:
        weights = ", ".join(f"{c}={w:g}" for c, w in self.weights.items())
        return f"HybridRetriever(entries={len(self.corpus)}, weights={{{weights}}})"

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_corpus(
        cls,
        corpus: str | Path | Corpus | None = None,
        *,
        model: Sequence[str | Path | Encoder] | str | Path | Encoder | None = None,
        lexical: Literal["bm25"] | None = "bm25",
        weights: Mapping[str, float] | None = None,
        lexicon: str | Path | Sequence[str] | None = None,
        question_encoding: QuestionEncoding = "query",
        contacts: str | Path | ContactDirectory | None = None,
        cache: bool = True,
    ) -> HybridRetriever:
        """A fused retriever: ``model`` is one model or a list of them (each as in
        :meth:`FAQRetriever.from_corpus`; the first is the primary; ``None`` = the default
        model), ``lexical="bm25"`` adds BM25. Each member's index is cached as usual."""
        models: list[str | Path | Encoder | None]
        if model is None or isinstance(model, (str, Path)) or not isinstance(model, Sequence):
            models = [model]  # type: ignore[list-item]
        else:
            models = list(model)
        if not models:
            raise WalletFAQError("model must name at least one model")
        members = _built_members(
            models,
            lambda m: FAQRetriever.from_corpus(
                corpus,
                model=m,
                question_encoding=question_encoding,
                contacts=contacts,
                cache=cache,
            ),
        )
        return cls(members, lexical=lexical, weights=weights, lexicon=lexicon)

    @classmethod
    def from_retriever(
        cls,
        retriever: FAQRetriever,
        *,
        models: Sequence[str | Path | Encoder] = (),
        lexical: Literal["bm25"] | None = "bm25",
        weights: Mapping[str, float] | None = None,
        lexicon: str | Path | Sequence[str] | None = None,
        cache: bool = True,
    ) -> HybridRetriever:
        """Fuse ``retriever`` (the primary, e.g. a tuned one) with more ``models`` over its
        corpus and/or BM25."""
        extra = _built_members(
            models,
            lambda m: FAQRetriever.from_corpus(
                retriever.corpus,
                model=m,
                question_encoding=retriever.question_encoding,
                contacts=None,
                cache=cache,
            ),
        )
        for member in extra:  # the corpus already holds the hotline entries
            member.contacts = retriever.contacts
            member._state = member._state.of(
                member.corpus, member.index, member.index_answers, retriever.contacts, 1
            )
        return cls([retriever, *extra], lexical=lexical, weights=weights, lexicon=lexicon)

    def with_members(self, members: Sequence[FAQRetriever]) -> HybridRetriever:
        """A new retriever like this one over other ``members`` (e.g. tuned copies of this
        one's members, over the same corpus), one per current member and in the same order:
        the same lexical channel, lexicon and weights (each member's weight carries over even
        when its channel name changes).

        Raises:
            WalletFAQError: not one FAQRetriever per member, or not over this corpus.
        """
        members = tuple(members)
        if len(members) != len(self.members) or not all(
            isinstance(m, FAQRetriever) for m in members
        ):
            raise WalletFAQError(
                f"members must be {len(self.members)} FAQRetriever objects, one per current "
                f"member, got {members!r}"
            )
        names = _channel_names(members, self.lexical_kind)
        weights = dict(zip(names, (self.weights[c] for c in self.channels), strict=True))
        return HybridRetriever(
            members,
            lexical=self.lexical_kind,
            weights=weights,
            lexicon=list(self.terms) if self.lexical_kind else None,
        )

    def _checked_weights(self, given: Mapping[str, float]) -> dict[str, float]:
        if not isinstance(given, Mapping):
            raise WalletFAQError(f"weights must be a dict of channel -> number, got {given!r}")
        unknown = set(given) - set(self.channels)
        if unknown:
            raise WalletFAQError(
                f"weights name unknown channels {sorted(unknown)}; the channels are "
                f"{list(self.channels)}"
            )
        weights = {}
        for position, channel in enumerate(self.channels):
            default = 1.0 if position == 0 else DEFAULT_WEIGHTS.get(channel, 1.0)
            value = given.get(channel, default)
            if not is_weight(value):
                raise WalletFAQError(
                    f"weight of {channel!r} must be a finite number ≥ 0, got {value!r}"
                )
            weights[channel] = float(value) + 0.0  # + 0.0: -0.0 reads as 0
        if not any(weights.values()):
            raise WalletFAQError("at least one channel weight must be above 0")
        return weights

    def set_weights(self, weights: Mapping[str, float]) -> None:
        """Replace the channel weights (channels not named keep their current weight)."""
        if not isinstance(weights, Mapping):
            raise WalletFAQError(f"weights must be a dict of channel -> number, got {weights!r}")
        self.weights = self._checked_weights({**self.weights, **weights})

    def _snapshot(self) -> _View:
        states = tuple(m._state for m in self.members)
        primary = states[0]
        lexical = (
            LexicalIndex(primary.row_text, self._tokenizer) if self._tokenizer is not None else None
        )
        return _View(
            members=states,
            matrices=tuple(s.index.reconstruct_n(0, s.index.ntotal) for s in states),
            lexical=lexical,
            starts=np.searchsorted(primary.row_entry, np.arange(len(primary.corpus))),
        )

    # ----------------------------------------------------------------- reading
    @property
    def primary(self) -> FAQRetriever:
        """The first member: its scores are the hits' ``score``."""
        return self.members[0]

    @property
    def corpus(self) -> Corpus:
        """The corpus searched."""
        return self._view.members[0].corpus

    @property
    def encoder(self) -> Encoder:
        """The primary encoder."""
        return self.primary.encoder

    @property
    def threshold(self) -> float:
        """Minimum top score (primary cosine) for :meth:`answer` to answer."""
        return self.primary.threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self.primary.threshold = value

    @property
    def clarify_margin(self) -> float:
        """How close (primary cosine) a second entry must come to the top one for
        :meth:`answer` to ask the user to choose (the primary's setting)."""
        return self.primary.clarify_margin

    @clarify_margin.setter
    def clarify_margin(self, value: float) -> None:
        self.primary.clarify_margin = value

    @property
    def categories(self) -> tuple[str, ...]:
        """The corpus' categories."""
        return self.corpus.categories

    @property
    def version(self) -> int:
        """Increases by one with every applied edit."""
        return self._view.members[0].version

    def entry(self, entry_id: str) -> FAQEntry:
        """The corpus entry with this id (``KeyError`` if absent)."""
        return self.corpus[entry_id]

    def ask(self, question: str, k: int = 5, category: str | None = None) -> list[Hit]:
        """The ``k`` best entries for ``question`` by fused score, best first."""
        return self._ask([clean_question(question)], k, category)[0]

    def ask_batch(
        self, questions: Sequence[str], k: int = 5, category: str | None = None
    ) -> list[list[Hit]]:
        """:meth:`ask` for many questions, in input order."""
        return self._ask(clean_questions(questions), k, category)

    def answer(
        self,
        question: str,
        threshold: float | None = None,
        k: int = 3,
        *,
        clarify_margin: float | None = None,
    ) -> Answer:
        """As :meth:`FAQRetriever.answer` on the fused ranking, with the primary scores: the
        best entry if its score reaches ``threshold`` (default :attr:`threshold`), the entries
        within ``clarify_margin`` (default :attr:`clarify_margin`) of it to choose from, or a
        pointer to human support; a harmful request is refused by the primary's safety gate,
        from the primary vector."""
        primary = self.primary
        cutoffs = primary._cutoffs(threshold, clarify_margin)
        text = clean_question(question)
        return primary._gated(
            question, text, cutoffs, lambda hook: self._ask([text], k, None, hook)[0]
        )

    def channel_scores(self, questions: Sequence[str]) -> dict[str, np.ndarray]:
        """Per channel, the ``(questions, entries)`` array of each entry's best-row score
        (cosine for encoders, BM25 for ``"bm25"``), before standardisation."""
        return self._channel_scores(self._view, clean_questions(questions))[0]

    def _channel_scores(
        self, view: _View, questions: Sequence[str], on_encoded: OnEncoded | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Entry scores per channel and, for the primary, the best row of each entry (the
        primary's encoded questions go to ``on_encoded``)."""
        out: dict[str, np.ndarray] = {}
        primary_rows = np.zeros(0)
        for position, (member, matrix) in enumerate(zip(self.members, view.matrices, strict=True)):
            name = self.channels[position]
            if position > 0 and self.weights[name] == 0.0:
                continue
            texts = [member.normalizer(q) for q in questions]
            vectors = as_unit_rows(member.encoder.encode_queries(texts))
            rows = vectors @ matrix.T  # (questions, rows)
            out[name] = np.maximum.reduceat(rows, view.starts, axis=1)
            if position == 0:
                if on_encoded is not None:
                    on_encoded(texts, vectors)
                primary_rows = best_rows(rows, view.starts)
                primary_texts = texts
        if view.lexical is not None and self.weights[LEXICAL_CHANNEL] > 0:
            rows = np.zeros((len(questions), view.lexical.size), dtype=np.float32)
            for i, text in enumerate(primary_texts):
                rows[i] = view.lexical.scores(text)
            out[LEXICAL_CHANNEL] = np.maximum.reduceat(rows, view.starts, axis=1)
        return out, primary_rows

    def _ask(
        self,
        questions: Sequence[str],
        k: int,
        category: str | None,
        on_encoded: OnEncoded | None = None,
    ) -> list[list[Hit]]:
        view = self._view
        state = view.members[0]
        check_k(k)
        mask = state.category_mask(category)
        scores, primary_rows = self._channel_scores(view, questions, on_encoded)
        fused = fuse(scores, self.weights)
        primary = scores[self.channels[0]]
        contacts = self.primary.contacts
        results = []
        for i, question in enumerate(questions):
            allowed = mask
            if state.gated and contacts is not None:
                allowed = state.gate(contacts.mentioned(question), mask)
            order = fused[i].copy()
            if allowed is not None:
                order[~allowed] = -np.inf
            top = np.argsort(-order, kind="stable")[:k]
            top = top[np.isfinite(order[top])]
            results.append(
                [
                    Hit.of(
                        state.corpus.entries[e],
                        float(primary[i, e]),
                        state.row_text[int(primary_rows[i, e])],
                    )
                    for e in top
                ]
            )
        return results

    # ----------------------------------------------------------------- weights
    def fit_weights(
        self,
        queries: str | Path | Sequence[object],
        *,
        grid: Sequence[float] = WEIGHT_GRID,
        depth: int = 10,
    ) -> dict[str, float]:
        """Choose the channel weights that maximise MRR@``depth`` on labelled queries
        (the evaluation format: a JSONL path, or a list of dicts with ``query`` and ``gold``
        or of :class:`~walletfaq.data.queries.LabelledQuery`), trying every combination of
        ``grid`` for the non-primary channels. Sets and returns the weights. Fit on queries you
        will not evaluate on."""
        from walletfaq.data.queries import LabelledQuery, numbered_queries

        grid = checked_grid(grid)
        if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
            raise WalletFAQError(f"depth must be a positive int (the MRR cutoff), got {depth!r}")
        path = Path(queries) if isinstance(queries, (str, Path)) else None
        numbered: list[tuple[int, LabelledQuery]]
        if path is not None or isinstance(queries, Mapping):
            # a path, or a mapping (which numbered_queries refuses: "wrap it in a list")
            numbered = numbered_queries(queries)  # type: ignore[arg-type]
        elif queries is None or isinstance(queries, bytes) or not isinstance(queries, Iterable):
            raise WalletFAQError(
                "fit_weights needs labelled queries: a JSONL path or a list of dicts "
                f"{{'query': ..., 'gold': [...]}}, got {type(queries).__name__}"
            )
        else:
            given = list(queries)  # read once: a generator must not lose its first item
            if all(isinstance(q, LabelledQuery) for q in given):
                numbered = list(enumerate(given, start=1))  # type: ignore[arg-type]
            else:
                numbered = numbered_queries(given)  # type: ignore[arg-type]
        labelled = [(line, q) for line, q in numbered if q.gold]
        if not labelled:
            raise WalletFAQError("fit_weights needs labelled queries (non-empty gold)")
        position = {entry_id: i for i, entry_id in enumerate(self.corpus.ids)}
        gold = np.zeros((len(labelled), len(self.corpus)), dtype=bool)
        for row, (line, q) in enumerate(labelled):
            unknown = [g for g in q.gold if g not in position]
            if unknown:
                raise CorpusError(
                    f"query {q.query!r}: gold ids {unknown} are not in the corpus; fix the labels",
                    path=path,
                    line=line,
                    field="gold",
                )
            gold[row, [position[g] for g in q.gold]] = True
        labelled_queries = [q for _, q in labelled]
        saved = self.weights
        self.weights = {c: 1.0 for c in self.channels}  # compute every channel
        try:
            scores = self.channel_scores([q.query for q in labelled_queries])
        finally:
            self.weights = saved
        best = best_weights(scores, gold, self.channels, grid, depth, fallback=saved)
        logger.info("fit_weights: MRR@%d %.4f with %s", depth, best[0], best[1])
        self.weights = self._checked_weights(best[1])
        return dict(self.weights)

    # ----------------------------------------------------------------- live edits
    def add(
        self,
        entries: Iterable[FAQEntry | Mapping[str, object]],
        *,
        persist_to: str | Path | None = None,
    ) -> None:
        """Add entries to every channel (see :meth:`FAQRetriever.add`)."""
        entries = list(entries)
        self._edit(lambda m: m.add(entries), persist_to)

    def update(
        self, entry: FAQEntry | Mapping[str, object], *, persist_to: str | Path | None = None
    ) -> None:
        """Add or replace one entry in every channel (see :meth:`FAQRetriever.update`)."""
        self._edit(lambda m: m.update(entry), persist_to)

    def remove(self, ids: str | Iterable[str], *, persist_to: str | Path | None = None) -> None:
        """Remove entries from every channel (see :meth:`FAQRetriever.remove`)."""
        ids = [ids] if isinstance(ids, str) else list(ids)
        self._edit(lambda m: m.remove(ids), persist_to)

    def _edit(self, change: object, persist_to: str | Path | None) -> None:
        with self._edit_lock:
            before = [m._state for m in self.members]
            try:
                for member in self.members:
                    change(member)  # type: ignore[operator]
                view = self._snapshot()
                if persist_to is not None:
                    self._save(persist_to, view)
            except BaseException:
                for member, state in zip(self.members, before, strict=True):
                    member._state = state
                raise
            self._view = view

    # ----------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Write every member's index and the fusion settings to ``directory`` (atomic; only
        a new or empty directory, or a saved hybrid retriever, is replaced)."""
        return self._save(directory, self._view)

    def _save(self, directory: str | Path, view: _View) -> Path:
        target = Path(directory).expanduser().resolve()
        members = [f"member-{i}" for i in range(len(self.members))]
        fields: dict[str, object] = {
            "format": HYBRID_FORMAT,
            "format_version": HYBRID_FORMAT_VERSION,
            "members": members,
            "lexical": self.lexical_kind,
            "lexicon": list(self.terms),
            "weights": self.weights,
        }
        try:
            with staged_directory(target, check_target=check_replaceable) as staging:
                for name, member, state in zip(members, self.members, view.members, strict=True):
                    member._save(staging / name, replace_anything=True, state=state)
                write_json(staging / HYBRID_MANIFEST, {**fields, "checksum": checksum(fields)})
        except OSError as exc:
            raise IndexWriteError(
                f"{target}: cannot write the hybrid index ({exc.strerror or exc}); choose a "
                "directory you can write to; nothing was changed"
            ) from None
        return target

    @classmethod
    def load(
        cls, directory: str | Path, *, models: Sequence[str | Path | Encoder] | None = None
    ) -> HybridRetriever:
        """Load a directory written by :meth:`save` (each member is verified as
        :meth:`FAQRetriever.load` does). ``models``: the encoders to load the members with,
        in order (``None`` = each member's own model, by name)."""
        root = Path(directory).expanduser()
        raw = read_manifest(root)
        names = raw["members"]
        if models is not None and len(models) != len(names):
            raise IndexMismatchError(
                f"{root}: holds {len(names)} members but {len(models)} models were given; "
                "give one model per member, primary first"
            )
        members = [
            FAQRetriever.load(root / name, model=None if models is None else models[i])
            for i, name in enumerate(names)
        ]
        return cls(members, lexical=raw["lexical"], weights=raw["weights"], lexicon=raw["lexicon"])


def _channel_names(members: Sequence[FAQRetriever], lexical: str | None) -> list[str]:
    names: list[str] = []
    for member in members:
        name = member.encoder.name
        if name in names:
            raise WalletFAQError(f"model {name!r} is given twice; give each model once")
        names.append(name)
    if lexical:
        names.append(LEXICAL_CHANNEL)
    return names


def _lexicon_terms(lexicon: str | Path | Sequence[str] | None) -> tuple[str, ...]:
    if lexicon is None:
        return read_lexicon(bundled_lexicon_path())
    if isinstance(lexicon, (str, Path)):
        return read_lexicon(lexicon)
    if not isinstance(lexicon, Iterable):
        raise WalletFAQError(
            f"lexicon must be a lexicon file path, a list of words or None, got "
            f"{type(lexicon).__name__}"
        )
    terms = tuple(lexicon)
    if not all(isinstance(t, str) and t.strip() and not any(c.isspace() for c in t) for t in terms):
        raise WalletFAQError("lexicon words must be non-empty strings without spaces")
    return terms


def _built_members(
    models: Sequence[str | Path | Encoder | None],
    build: Callable[[str | Path | Encoder | None], FAQRetriever],
) -> list[FAQRetriever]:
    """``build(model)`` for each model, with a bar (one step per member: a member not in the
    cache embeds the whole corpus) and a log line naming each when there are several."""
    from walletfaq._progress import progress_bar

    members = []
    with progress_bar(
        total=len(models), desc="ensemble members", unit="model", disable=len(models) < 2
    ) as bar:
        for position, model in enumerate(models, start=1):
            name = getattr(model, "name", model) or "the default model"
            if len(models) > 1:
                logger.info("ensemble member %d of %d: %s", position, len(models), name)
                bar.set_postfix_str(str(name))
            members.append(build(model))
            bar.update(1)
    return members
