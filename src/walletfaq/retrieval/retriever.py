"""FAQRetriever: the corpus, an encoder and a FAISS index, answering free-text questions."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import walletfaq.encoders.restore as tuned_encoders
import walletfaq.index.vector_index as vector_index
from walletfaq.data.contacts import ContactDirectory, corpus_with_contacts
from walletfaq.data.corpus import Corpus, FAQEntry, index_texts, write_corpus
from walletfaq.data.normalize import QuestionNormalizer
from walletfaq.data.safety import SafetyExample, load_safety_examples
from walletfaq.encoders.presets import cache_dir, resolve_encoder
from walletfaq.encoders.protocol import Encoder, as_unit_rows
from walletfaq.errors import CorpusError, IndexMismatchError, WalletFAQError
from walletfaq.index.directory import Destination
from walletfaq.index.search import Answer, Hit, decide, fallback_problem, refusal
from walletfaq.index.vector_index import IndexKind, IndexSpec
from walletfaq.retrieval.answer_settings import AnswerSettings, Cutoffs
from walletfaq.retrieval.edits import edited_state, validated_entries, validated_ids
from walletfaq.retrieval.embedding import QuestionEncoding, cache_key, embed_corpus_texts
from walletfaq.retrieval.from_store import FollowsStore
from walletfaq.retrieval.index_cache import load_or_build
from walletfaq.retrieval.persistence import load_arguments, save_state
from walletfaq.retrieval.questions import (
    check_k,
    check_vectors,
    clean_question,
    clean_questions,
)
from walletfaq.retrieval.safety import SafetyGate, safety_settings
from walletfaq.retrieval.state import RetrieverState

if TYPE_CHECKING:
    import faiss
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

QUERY_CACHE_SIZE = 1024
"""How many recent (question, k, category) results each retriever keeps."""


class FAQRetriever(AnswerSettings, FollowsStore):
    """Semantic search over an FAQ corpus.

    Build one with :meth:`from_corpus` (embeds the corpus, or reuses a cached index),
    :meth:`load` (a directory written by :meth:`save`) or :meth:`from_store` (the store of
    record, followed: :mod:`walletfaq.retrieval.replica`). Then :meth:`ask` a question.

    Args:
        corpus: the entries searched.
        encoder: turns texts into unit vectors (see :mod:`walletfaq.encoders.sentence_transformer`).
        index: FAISS index with one row per text of :func:`~walletfaq.data.corpus.index_texts`.
        index_spec: how ``index`` was built.
        index_answers: whether each entry's question + answer was indexed as an extra row.
        question_encoding: how question rows were embedded (see :data:`QuestionEncoding`).
        contacts: support directory used by :meth:`answer` to point to human support.
        threshold: minimum top score for :meth:`answer` to answer; ``None`` = the model's
            calibrated default (:func:`walletfaq.encoders.presets.default_threshold`).
        clarify_margin, clarify_message: :meth:`answer` asks the user to choose when a second
            entry above the threshold is less than ``clarify_margin`` below the top one (in
            [0, 2]; 0 never; ``None`` = the model's calibrated default,
            :func:`~walletfaq.encoders.presets.default_clarify_margin`), saying
            ``clarify_message`` (``None`` = the default). Saved with the index.
        normalizer: applied to every question after cleaning (control characters removed,
            whitespace collapsed: :func:`~walletfaq.data.normalize.clean_text`) and before encoding
            (default: Traditional → Simplified conversion).
        fallback: the message :meth:`answer` gives when not confident; ``None`` = a pointer to
            the human support of the wallet named in the question (from ``contacts``), or to
            the app's customer-service centre. Saved with the index.
        version: the index version to start from (:meth:`load` restores the saved one).
        safety, safety_message, safety_examples: whether :meth:`answer` refuses harmful
            requests, what it says then (``None`` = the default message), the gate's exemplars
            (a JSONL path or exemplar objects; ``None`` = the bundled ones). All saved with
            the index (:mod:`walletfaq.retrieval.safety`).
    """

    def __init__(
        self,
        corpus: Corpus,
        encoder: Encoder,
        index: faiss.Index,
        *,
        index_spec: IndexSpec | None = None,
        index_answers: bool = False,
        question_encoding: QuestionEncoding = "query",
        contacts: ContactDirectory | None = None,
        threshold: float | None = None,
        normalizer: QuestionNormalizer | None = None,
        fallback: str | None = None,
        version: int = 1,
        clarify_margin: float | None = None,
        clarify_message: str | None = None,
        safety: bool = True,
        safety_message: str | None = None,
        safety_examples: str | Path | Iterable[SafetyExample | Mapping[str, object]] | None = None,
    ) -> None:
        if index.d != encoder.dim:
            raise IndexMismatchError(
                f"the index has dimension {index.d} but model {encoder.name!r} gives "
                f"{encoder.dim}; use the model the index was built with"
            )
        self.encoder = encoder
        self.index_spec = index_spec if index_spec is not None else IndexSpec()
        self.index_answers = index_answers
        self.question_encoding = question_encoding
        self.normalizer = normalizer if normalizer is not None else QuestionNormalizer()
        self.contacts = contacts
        self._model_defaults(encoder.name, threshold, clarify_margin)
        self.clarify_message = clarify_message
        problem = fallback_problem(fallback)
        if problem is not None:
            raise WalletFAQError(problem)
        self.fallback = fallback
        self.safety = safety
        self.safety_message = safety_message  # type: ignore[assignment]
        examples = None if safety_examples is None else load_safety_examples(safety_examples)
        self._safety_gate = SafetyGate(examples)
        self._state = RetrieverState.of(corpus, index, index_answers, contacts, version=version)
        self._cache_lock = threading.Lock()
        self._edit_lock = threading.Lock()

    def __repr__(self) -> str:
        tuned = tuned_encoders.describe_tuning(self.encoder)
        return (
            f"FAQRetriever(model={self.encoder.name!r}, "
            + (f"tuned={tuned!r}, " if tuned else "")
            + f"entries={len(self.corpus)}, vectors={self.index.ntotal}, "
            f"index={self.index_spec.kind!r}, index_answers={self.index_answers}, "
            f"question_encoding={self.question_encoding!r}, threshold={self.threshold:.4f}, "
            f"clarify_margin={self.clarify_margin:g})"
        )

    # ----------------------------------------------------------------- construction
    @classmethod
    def build(
        cls,
        corpus: Corpus,
        *,
        model: str | Path | Encoder | None = None,
        index: IndexKind | IndexSpec = "flat",
        index_answers: bool = False,
        question_encoding: QuestionEncoding = "query",
        contacts: ContactDirectory | None = None,
    ) -> FAQRetriever:
        """Embed every text of ``corpus`` and build a fresh index (no cache involved).

        Arguments are those of :meth:`from_corpus`.
        """
        encoder = resolve_encoder(model)
        spec = index if isinstance(index, IndexSpec) else IndexSpec(kind=index)
        texts, _ = index_texts(corpus.entries, index_answers)
        logger.info(
            "embedding %d texts of %d entries with %s", len(texts), len(corpus), encoder.name
        )
        vectors = embed_corpus_texts(encoder, texts, question_encoding)
        spec = spec.resolved(len(texts))
        return cls(
            corpus,
            encoder,
            vector_index.build_index(vectors, spec),
            index_spec=spec,
            index_answers=index_answers,
            question_encoding=question_encoding,
            contacts=contacts,
        )

    @classmethod
    def from_corpus(
        cls,
        corpus: str | Path | Corpus | None = None,
        *,
        model: str | Path | Encoder | None = None,
        index: IndexKind | IndexSpec = "flat",
        index_answers: bool = False,
        question_encoding: QuestionEncoding = "query",
        contacts: str | Path | ContactDirectory | None = None,
        cache: bool = True,
    ) -> FAQRetriever:
        """A retriever over a corpus, reusing a cached index when one matches.

        Args:
            corpus: a JSONL path or a :class:`Corpus`; ``None`` = the bundled wallet FAQ.
            model: a preset name (``"e5-small"``, the default, or ``"use-m3"``), any
                sentence-transformers hub name or local path, or an :class:`Encoder`.
            index: ``"flat"`` (exact, default), ``"hnsw"`` (approximate, for large corpora),
                ``"auto"``, or an :class:`IndexSpec`.
            index_answers: also index each entry's question + answer text (measured: no gain
                on the bundled corpus, so off by default).
            question_encoding: how question rows are embedded (:data:`QuestionEncoding`).
            contacts: a contacts JSON path or directory whose hotlines become entries. ``None``
                uses the bundled directory with the bundled corpus and none otherwise.
            cache: reuse/save the built index in the user cache directory, keyed by the
                model fingerprint, corpus hash and index settings.
        """
        full, directory = corpus_with_contacts(corpus, contacts)
        encoder = resolve_encoder(model)
        spec = index if isinstance(index, IndexSpec) else IndexSpec(kind=index)

        def build() -> FAQRetriever:
            return cls.build(
                full,
                model=encoder,
                index=spec,
                index_answers=index_answers,
                question_encoding=question_encoding,
                contacts=directory,
            )

        if not cache:
            return build()
        key = cache_key(encoder, full, spec, index_answers, question_encoding)
        location = cache_dir() / "indexes" / key

        def load() -> FAQRetriever:
            cached = cls.load(location, model=encoder, corpus=full)
            cached._model_defaults(encoder.name)  # as built: no stale threshold or margin
            return cached

        return load_or_build(
            location,
            load=load,
            build=build,
            save=lambda r: r._save(location, replace_anything=True),
        )

    # ----------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Write the index, corpus, contacts and manifest to ``directory``; returns its path.

        The write is atomic and crash-safe: ``directory`` holds the complete old or the
        complete new index at every instant. Only a new or empty directory, or an existing
        walletfaq index, is replaced.

        Raises:
            IndexFormatError: ``directory`` holds anything that is not a walletfaq index
                (nothing is touched).
            IndexWriteError: the operating system refused the write (nothing is changed).
        """
        return self._save(directory, replace_anything=False)

    def _save(
        self, directory: Destination, *, replace_anything: bool, state: RetrieverState | None = None
    ) -> Path:
        state = self._state if state is None else state
        return save_state(
            directory,
            state=state,
            encoder=self.encoder,
            index_spec=self.index_spec,
            index_answers=self.index_answers,
            question_encoding=self.question_encoding,
            settings={
                "threshold": self.threshold,
                "fallback": self.fallback,
                "clarify_margin": self.clarify_margin,
                "clarify_message": self._clarify_message,
                **safety_settings(self.safety, self._safety_message, self._safety_gate),
            },
            contacts=self.contacts,
            replace_anything=replace_anything,
            version=state.version,
        )

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        model: str | Path | Encoder | None = None,
        corpus: str | Path | Corpus | None = None,
    ) -> FAQRetriever:
        """Load a directory written by :meth:`save`.

        Args:
            directory: the saved index.
            model: the model to encode questions with; ``None`` = the one the index was built
                with (by name). A model whose fingerprint differs raises
                :class:`IndexMismatchError`.
            corpus: optionally, the corpus the index must have been built from; a changed
                corpus raises :class:`IndexMismatchError` instead of answering from stale data.
        """
        return cls(**load_arguments(directory, model=model, corpus=corpus, resolve=resolve_encoder))

    def _derived(self, encoder: Encoder, index: faiss.Index) -> FAQRetriever:
        """A retriever over this one's corpus and settings with another encoder and index
        (what :func:`walletfaq.tune` returns)."""
        return FAQRetriever(
            self.corpus,
            encoder,
            index,
            index_spec=self.index_spec,
            index_answers=self.index_answers,
            question_encoding=self.question_encoding,
            contacts=self.contacts,
            threshold=self.threshold,
            normalizer=self.normalizer,
            fallback=self.fallback,
            version=self.version + 1,
            clarify_margin=self.clarify_margin,
            clarify_message=self._clarify_message,
            safety=self.safety,
            safety_message=self._safety_message,
            safety_examples=self._safety_gate.custom_examples,
        )

    # ----------------------------------------------------------------- live edits
    def add(
        self,
        entries: Iterable[FAQEntry | Mapping[str, object]],
        *,
        persist_to: Destination | None = None,
    ) -> None:
        """Append new entries (``FAQEntry`` or dicts in the corpus file format).

        Only the new entries' texts are embedded; the result equals a full rebuild from the
        edited corpus. Readers see the old or the new corpus, never a mix; :meth:`save`
        persists the edit.

        With ``persist_to`` (a saved index directory), the edited index is saved there
        (atomically) before it is swapped in: if the save fails, the edit is not applied.
        :meth:`update` and :meth:`remove` take it too. An
        :class:`~walletfaq.index.directory.IfUnchanged` directory is written only while it
        holds the content the edit started from (else :class:`IndexConflictError`).

        Raises:
            CorpusError: an entry is invalid, or its id already exists (use :meth:`update`).
            IndexFormatError: ``persist_to`` could not be written (the edit is not applied).
            IndexConflictError: another save replaced an ``IfUnchanged`` ``persist_to``.
        """
        added = validated_entries(entries)
        with self._edit_lock:
            state = self._state
            existing = set(state.corpus.ids)
            for entry in added:
                if entry.id in existing:
                    raise CorpusError(
                        f"id {entry.id!r} already exists; use update() to replace it",
                        field="id",
                    )
            self._apply(state, [*state.corpus.entries, *added], persist_to)

    def update(
        self, entry: FAQEntry | Mapping[str, object], *, persist_to: Destination | None = None
    ) -> bool:
        """Replace the entry with the same id in place, or append it if the id is new.

        Returns ``True`` when an entry was replaced, ``False`` when it was added. Embeds only
        the entry's texts that are new to the index (none for an answer-only change, unless
        answers are indexed).
        """
        (new,) = validated_entries([entry])
        with self._edit_lock:
            state = self._state
            entries = list(state.corpus.entries)
            ids = state.corpus.ids
            replaced = new.id in ids
            if replaced:
                entries[ids.index(new.id)] = new
            else:
                entries.append(new)
            self._apply(state, entries, persist_to)
            return replaced

    def remove(self, ids: str | Iterable[str], *, persist_to: Destination | None = None) -> None:
        """Remove the entries with these ids.

        Raises:
            CorpusError: an id is invalid or unknown (nothing removed), or none would be left.
        """
        wanted = validated_ids(ids)
        with self._edit_lock:
            state = self._state
            unknown = sorted(set(wanted) - set(state.corpus.ids))
            if unknown:
                raise CorpusError(f"unknown entry id(s) {unknown}; nothing removed", field="id")
            kept = [entry for entry in state.corpus if entry.id not in set(wanted)]
            if not kept:
                raise CorpusError("removing every entry would leave an empty corpus", field="id")
            self._apply(state, kept, persist_to)

    def export(self, path: str | Path, *, include_contacts: bool = False) -> Path:
        """Write the current corpus as a JSONL corpus file (atomically); returns its path.

        Hotline entries generated from the contacts directory are left out unless
        ``include_contacts`` (they are regenerated from ``contacts.json`` by ``from_corpus``).
        """
        generated = {c.entry_id for c in self.contacts} if self.contacts is not None else set()
        entries = [entry for entry in self.corpus if include_contacts or entry.id not in generated]
        return write_corpus(entries, path)

    def _apply(
        self,
        state: RetrieverState,
        entries: Sequence[FAQEntry],
        persist_to: Destination | None = None,
    ) -> None:
        """Build the state of ``entries`` (:func:`~walletfaq.retrieval.edits.edited_state`),
        save it to ``persist_to`` if given, and swap it in (one assignment). Called with the
        edit lock held."""
        new_state = edited_state(
            state,
            entries,
            encoder=self.encoder,
            index_spec=self.index_spec,
            index_answers=self.index_answers,
            question_encoding=self.question_encoding,
            contacts=self.contacts,
        )
        if persist_to is not None:
            self._save(persist_to, replace_anything=False, state=new_state)
        self._state = new_state

    # ----------------------------------------------------------------- search
    @property
    def model(self) -> SentenceTransformer:
        """The :class:`sentence_transformers.SentenceTransformer` in use (loaded on demand)."""
        return self.encoder.model  # type: ignore[attr-defined, no-any-return]

    @property
    def corpus(self) -> Corpus:
        """The entries searched (after any :meth:`add`/:meth:`update`/:meth:`remove`)."""
        return self._state.corpus

    @property
    def index(self) -> faiss.Index:
        """The FAISS index (one row per indexed text)."""
        return self._state.index

    @property
    def version(self) -> int:
        """Starts at 1 and grows by one with every applied edit; saved with the index and
        restored by :meth:`load` (clients compare it to notice a change)."""
        return self._state.version

    def is_cached(self, question: str, k: int = 5, category: str | None = None) -> bool:
        """Whether :meth:`ask` with these arguments would be answered from the query cache
        (nothing encoded); ``False`` for an unusable question. Leaves the cache as it is."""
        try:
            key = (self.normalizer(clean_question(question)), k, category)
        except WalletFAQError:
            return False
        with self._cache_lock:
            return key in self._state.cache

    def clear_cache(self) -> None:
        """Forget the cached answers (and safety verdicts) of repeated questions (benchmarks
        measure cold asks)."""
        with self._cache_lock:
            self._state.cache.clear()
        self._safety_gate.forget()

    @property
    def categories(self) -> tuple[str, ...]:
        """Categories of the corpus, usable as ``category=`` filters."""
        return self.corpus.categories

    def entry(self, entry_id: str) -> FAQEntry:
        """The entry with this id (``KeyError`` if absent, ``CorpusError`` if not an id)."""
        return self.corpus[entry_id]

    def ask(self, question: str, k: int = 5, category: str | None = None) -> list[Hit]:
        """The ``k`` best-matching entries for ``question``, best first.

        Each entry appears at most once, scored by its best-matching question or alt question.
        A repeated (question, k, category) is answered from a small per-retriever cache.

        Raises:
            QueryError: ``question`` is empty or not a string, ``k`` is not a positive int,
                or ``category`` is not one of :attr:`categories`.
        """
        return self._ask_cleaned([clean_question(question)], k, category)[0]

    def ask_batch(
        self, questions: Sequence[str], k: int = 5, category: str | None = None
    ) -> list[list[Hit]]:
        """:meth:`ask` for many questions; one list of hits per question, in input order.

        Each question gets exactly the ranking :meth:`ask` gives it alone.

        Raises:
            QueryError: ``questions`` is not a list/tuple of strings, or one of them is
                unusable (the message gives its position), or ``k``/``category`` is invalid.
        """
        return self._ask_cleaned(clean_questions(questions), k, category)

    def _ask_cleaned(
        self,
        questions: Sequence[str],
        k: int,
        category: str | None,
        on_encoded: Callable[[Sequence[str], np.ndarray], None] | None = None,
    ) -> list[list[Hit]]:
        """Normalise cleaned questions, serve cached ones, encode and search the rest (and
        hand what was encoded to ``on_encoded``).

        Everything is read from one snapshot of the state, so a concurrent edit is seen
        entirely or not at all."""
        state = self._state
        check_k(k)
        allowed = state.category_mask(category)
        cleaned = [self.normalizer(q) for q in questions]
        results: list[list[Hit] | None] = []
        missing: list[int] = []
        with self._cache_lock:
            for position, text in enumerate(cleaned):
                cached = state.cache.get((text, k, category))
                if cached is not None:
                    state.cache.move_to_end((text, k, category))
                else:
                    missing.append(position)
                results.append(cached)
        if missing:
            texts = [cleaned[i] for i in missing]
            vectors = as_unit_rows(self.encoder.encode_queries(texts))
            if on_encoded is not None:
                on_encoded(texts, vectors)
            found = state.search(vectors, k, allowed, self.contacts, texts)
            with self._cache_lock:
                for position, hits in zip(missing, found, strict=True):
                    results[position] = hits
                    state.cache[(cleaned[position], k, category)] = hits
                    if len(state.cache) > QUERY_CACHE_SIZE:
                        state.cache.popitem(last=False)
        return [list(hits) for hits in results if hits is not None]

    def answer(
        self,
        question: str,
        threshold: float | None = None,
        k: int = 3,
        *,
        clarify_margin: float | None = None,
    ) -> Answer:
        """The best entry if confident, the close entries to choose from, or a pointer to
        human support; a harmful request is refused.

        ``decision`` (:func:`~walletfaq.index.search.close_positions`, on the top ``k``):
        ``"answer"`` when the top score reaches ``threshold`` (default :attr:`threshold`);
        ``"clarify"`` (not confident: the app must ask the user to choose among ``options``,
        2 or 3 distinct entries) when a second entry also reaches it less than
        ``clarify_margin`` (default :attr:`clarify_margin`) below the top one; else
        ``"handoff"``; ``"refuse"`` (:attr:`safety_message`, no hit, no candidates) when
        :attr:`safety` is on and the gate of :mod:`walletfaq.retrieval.safety` judges the
        question's vector harmful (fraud, theft, laundering, bypassing verification, other
        people's data, prompt injection). Only ``answer()`` refuses: :meth:`ask` stays pure
        retrieval.

        Raises:
            QueryError: an unusable question, ``threshold`` not a finite number in [-1, 1],
                ``clarify_margin`` not one in [0, 2], bad ``k``.
        """
        cutoffs = self._cutoffs(threshold, clarify_margin)
        text = clean_question(question)
        return self._gated(
            question, text, cutoffs, lambda hook: self._ask_cleaned([text], k, None, hook)[0]
        )

    def _gated(
        self, question: str, text: str, cutoffs: Cutoffs, search: Callable[..., list[Hit]]
    ) -> Answer:
        """The refusal of ``question`` (cleaned: ``text``) if the gate refuses it, else
        :func:`~walletfaq.index.search.decide` at ``cutoffs`` (threshold, clarify margin) on
        the hits of ``search(on_encoded)``."""
        if self.safety:
            gate = self._safety_gate
            hits, verdict = gate.screen(self.encoder, self.normalizer, self._state, text, search)
            if verdict.refuse:
                return refusal(question, self.safety_message, verdict.reason)
        else:
            hits = search(None)
        threshold, margin = cutoffs
        return decide(
            question, hits, threshold, self.fallback, self.contacts, margin, self._clarify_message
        )

    def warm_up(self) -> None:
        """Load the query encoder and build the safety gate now, so that the first
        :meth:`answer` does not wait for them (a service calls it before serving)."""
        self.ask("你好", k=1)
        if self.safety:
            self._safety_gate.head(self.encoder, self.normalizer, self._state)

    def search_vectors(
        self,
        vectors: np.ndarray,
        k: int = 5,
        category: str | None = None,
        texts: Sequence[str] | None = None,
    ) -> list[list[Hit]]:
        """Search with query vectors already encoded (shape ``(n, dim)``, normalised here).

        ``texts``, the questions the vectors encode (one per row), gate hotline entries by the
        wallet named, as :meth:`ask` does; without them hotline entries are not gated.

        Raises:
            QueryError: ``vectors`` is not a finite ``(n, dim)`` array, or bad ``k``/category.
        """
        state = self._state
        check_k(k)
        mask = state.category_mask(category)
        array = check_vectors(vectors, state.index.d, texts)
        return state.search(as_unit_rows(array), k, mask, self.contacts, texts)
