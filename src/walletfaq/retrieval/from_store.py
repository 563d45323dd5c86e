"""``FAQRetriever.from_store``: what :class:`~walletfaq.retrieval.retriever.FAQRetriever` takes
from the store of record (:class:`FollowsStore`: :meth:`~FollowsStore.from_store`, the
``follower``, :meth:`~FollowsStore.close` and the context manager). How a replica is built and
follows its store: :mod:`walletfaq.retrieval.replica`.

Nothing of the ``store`` extra is imported until a store is used.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from walletfaq.data.contacts import ContactDirectory, as_contacts
from walletfaq.data.corpus import Corpus, FAQEntry
from walletfaq.errors import StoreError
from walletfaq.retrieval.replica import DEFAULT_POLL_INTERVAL_S, StoreFollower, check_poll_interval

if TYPE_CHECKING:
    from walletfaq.encoders.protocol import Encoder
    from walletfaq.index.vector_index import IndexKind, IndexSpec
    from walletfaq.retrieval.embedding import QuestionEncoding
    from walletfaq.retrieval.state import RetrieverState
    from walletfaq.store import Store

_R = TypeVar("_R", bound="FollowsStore")


class FollowsStore:
    """What :class:`~walletfaq.retrieval.retriever.FAQRetriever` takes from this module:
    :meth:`from_store`, :attr:`follower`, :meth:`close` and the context manager."""

    follower: StoreFollower | None = None
    """The follower of the store a retriever was built from (:meth:`from_store`); ``None``
    for one built otherwise."""

    if TYPE_CHECKING:
        _state: RetrieverState
        _edit_lock: threading.Lock

        def _apply(
            self, state: RetrieverState, entries: Sequence[FAQEntry], persist_to: Any = None
        ) -> None: ...

        @classmethod
        def from_corpus(  # FAQRetriever's, declared for the type checker
            cls: type[_R],
            corpus: str | Path | Corpus | None = None,
            *,
            model: str | Path | Encoder | None = None,
            index: IndexKind | IndexSpec = "flat",
            index_answers: bool = False,
            question_encoding: QuestionEncoding = "query",
            contacts: str | Path | ContactDirectory | None = None,
            cache: bool = True,
        ) -> _R: ...

    @classmethod
    def from_store(
        cls: type[_R],
        store: str | Store,
        *,
        model: str | Path | Encoder | None = None,
        follow: bool = False,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        listen: bool = True,
        index: IndexKind | IndexSpec = "flat",
        index_answers: bool = False,
        question_encoding: QuestionEncoding = "query",
        contacts: str | Path | ContactDirectory | None = None,
        cache: bool = True,
    ) -> _R:
        """A retriever over the latest revision of the store of record, following it when
        ``follow`` (module doc: :mod:`walletfaq.retrieval.replica`).

        Args:
            store: an SQLite file path, a ``postgresql://`` URL, or an open
                :class:`~walletfaq.store.Store` (then not closed by :meth:`close`).
            model, index, index_answers, question_encoding, cache: as for
                :meth:`from_corpus`; the index is loaded from the user cache when one was
                built from the same content, model and settings.
            follow: follow the store's changes in a background thread (until :meth:`close`);
                without it, ``r.follower.sync()`` catches up when called.
            poll_interval: seconds between two reads of the store's head when nothing woke
                the follower (the only way on SQLite; the fallback of LISTEN on PostgreSQL).
            listen: on PostgreSQL, wake at each commit (LISTEN); ``False`` = poll only.
            contacts: a contacts JSON file or directory whose hotline entries are added after
                the store's entries (``None``: none); an id in both is an error.

        Raises:
            StoreError: the store cannot be opened (missing, unreachable:
                :class:`~walletfaq.errors.StoreUnavailableError`; written by a newer
                walletfaq) or holds no revision yet.
        """
        from walletfaq.store import Store

        interval = check_poll_interval(poll_interval)
        opened = store if isinstance(store, Store) else Store.open(str(store))
        try:
            revision, versions = opened.snapshot()
            if revision == 0:
                raise StoreError(
                    f"{opened.url} holds no revision yet; import a corpus first: "
                    "walletfaq store init --store URL [--corpus FILE]"
                )
            directory = as_contacts(contacts)
            entries = tuple(v.entry for v in versions if v.entry is not None)
            retriever = cls.from_corpus(
                Corpus(entries=entries, source=f"{opened.url}@{revision}"),
                model=model,
                index=index,
                index_answers=index_answers,
                question_encoding=question_encoding,
                contacts=directory,
                cache=cache,
            )
            follower = StoreFollower(
                opened,
                retriever,
                versions,
                revision,
                contacts=directory,
                poll_interval=interval,
                listen=listen,
                owns_store=opened is not store,
            )
        except BaseException:
            if opened is not store:
                opened.close()
            raise
        retriever.follower = follower
        if follow:
            follower.start()
        return retriever

    def close(self) -> None:
        """Stop following the store (:meth:`StoreFollower.close`); nothing to do for a
        retriever that does not follow one. It keeps answering from what it holds."""
        if self.follower is not None:
            self.follower.close()

    def __enter__(self: _R) -> _R:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


__all__ = ["FollowsStore"]
