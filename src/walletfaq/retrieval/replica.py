"""Replicas of the store of record: a retriever built from the store's latest revision that
follows its change feed (:meth:`FAQRetriever.from_store
<walletfaq.retrieval.from_store.FollowsStore.from_store>`, in
:mod:`walletfaq.retrieval.from_store`), and :class:`StoreFollower`, which keeps it there.

::

    with FAQRetriever.from_store("postgresql://walletfaq@db/faq", follow=True) as r:
        r.answer("充值没到账")          # the store's latest content, within the lag
        print(r.follower.status())     # revision served, store head, lag, health

Start: :meth:`Store.snapshot <walletfaq.store.Store.snapshot>` reads the head revision and every
entry (one transaction), and :meth:`FAQRetriever.from_corpus` builds the index or loads it from
the user cache, keyed by content, model and index settings (a replica restarted on content it
has seen loads instead of embedding).

Following (:class:`StoreFollower`, a background thread once started): on PostgreSQL a
connection of its own (psycopg 3, autocommit) listens on ``walletfaq_changes``, which every
commit notifies; on any notification, and at least every ``poll_interval`` seconds (the fallback
for a lost notification or a broken connection; the only way on SQLite), it reads the head and
applies :meth:`Store.changes_since <walletfaq.store.Store.changes_since>` the served revision:
every pending revision at once (removals included), one index build, embedding only the texts
new to the index (:func:`walletfaq.retrieval.edits.edited_state`), swapped in with one
assignment (readers see one revision or the next, never a mix).

Faults: a store that fails (unreachable, shutting down) leaves the last revision served; the
follower is then *degraded* (:attr:`StoreFollower.degraded_reason` says why), retries with
backoff (0.25 s doubling to 2 s) and catches up by itself when the store answers again (a
change that cannot be applied, e.g. an id clashing with a hotline entry, is tried again
up to every 30 s, still serving the last revision, until the store is fixed). A lost
LISTEN connection is reconnected with backoff, and polling covers the gap. A store written by a
newer walletfaq is refused when opened (:class:`~walletfaq.errors.StoreError`).

This module imports the store (and its SQLAlchemy/psycopg dependencies) only when a store is
used, so a retriever without one needs nothing of the ``store`` extra.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from walletfaq.data.contacts import ContactDirectory, contact_entries
from walletfaq.data.corpus import FAQEntry
from walletfaq.errors import StoreError, WalletFAQError

if TYPE_CHECKING:
    from walletfaq.retrieval.state import RetrieverState
    from walletfaq.store import Change, EntryVersion, Revision, Store

logger = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL_S = 1.0
"""Seconds between two reads of the store's head when nothing woke the follower."""

RETRY_FIRST_S = 0.25
RETRY_MAX_S = 2.0
"""Backoff after a failed read of the store: the first wait, doubling up to the last."""

APPLY_RETRY_MAX_S = 30.0
"""Longest wait before trying again a change that could not be applied (not a store error)."""

LISTEN_RETRY_MAX_S = 5.0
"""Longest wait between two attempts to open the LISTEN connection again (PostgreSQL)."""

LISTEN_CONNECT_TIMEOUT_S = 5
"""Seconds the LISTEN connection may take to connect."""

LISTENER_NAME = "walletfaq-follower"
"""The ``application_name`` of the LISTEN connection (``pg_stat_activity`` shows it)."""

FEED_BATCH = 2000
"""Most entry versions applied in one index build while catching up."""

_WAIT_SLICE_S = 0.25  # how often a waiting follower checks that it was not closed


class Followed(Protocol):
    """What a follower updates: a retriever's state, swapped under its edit lock
    (:class:`~walletfaq.retrieval.retriever.FAQRetriever`)."""

    _state: RetrieverState
    _edit_lock: threading.Lock

    def _apply(
        self, state: RetrieverState, entries: Sequence[FAQEntry], persist_to: Any = None
    ) -> None: ...


@dataclass(frozen=True)
class ReplicaStatus:
    """Where a replica stands against its store (:meth:`StoreFollower.status`).

    Attributes:
        store: the store's URL (password hidden).
        revision: the store revision served.
        store_head: the latest revision the store reported (at its last answer).
        lag_revisions: ``store_head - revision``.
        lag_seconds: for how long the replica has known of a revision it does not serve yet
            (0 when it serves the head it last read).
        contact_age_s: seconds since the store last answered the follower (a bound on how
            stale the content may be while the store is unreachable).
        healthy: the last read of the store, and the last apply, succeeded.
        degraded_reason: why not, while not healthy (``None`` when healthy).
        following: the background thread runs (``follow=True``, not closed).
        listening: a LISTEN connection is open (PostgreSQL; ``False`` on SQLite, with
            ``listen=False``, or while it is being reconnected: polling covers the gap).
    """

    store: str
    revision: int
    store_head: int
    lag_revisions: int
    lag_seconds: float
    contact_age_s: float
    healthy: bool
    degraded_reason: str | None
    following: bool
    listening: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``/readyz`` shows it)."""
        return asdict(self)


class StoreFollower:
    """Keeps a retriever's content equal to its store's latest revision.

    Made by :meth:`FAQRetriever.from_store
    <walletfaq.retrieval.from_store.FollowsStore.from_store>` (as ``r.follower``):
    :meth:`sync` catches up at once, :meth:`start` follows in a background thread,
    :meth:`write` edits the store and serves the edit before it returns, :meth:`close` stops.

    Args:
        store: the store of record.
        target: the retriever kept up to date.
        versions: the store's entries at ``revision`` (what ``target`` holds now).
        revision: the revision ``target`` holds.
        contacts: hotline entries added after the store's entries (``None``: none).
        poll_interval: seconds between two reads of the head when nothing woke the follower.
        listen: on PostgreSQL, listen for the commit notifications (``False``: poll only,
            e.g. behind a connection pooler that does not pass LISTEN through).
        owns_store: close ``store`` with the follower.
        clock: monotonic seconds (tests pass a fake one).
    """

    def __init__(
        self,
        store: Store,
        target: Followed,
        versions: Sequence[EntryVersion],
        revision: int,
        *,
        contacts: ContactDirectory | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        listen: bool = True,
        owns_store: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._target = target
        self._contacts = contacts
        self.poll_interval = check_poll_interval(poll_interval)
        self._listen = bool(listen) and not store.engine.dialect.name == "sqlite"
        self._owns_store = owns_store
        self._clock = clock
        self._content = {v.entry_id: v for v in versions if v.entry is not None}
        self._revision = revision
        self._head = revision
        self._behind_since: float | None = None
        self._last_contact = clock()
        self._degraded: str | None = None
        self._sync_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: Any = None  # psycopg.Connection, used by the thread only
        self._listen_retry_at = 0.0
        self._listen_failures = 0

    def __repr__(self) -> str:
        return (
            f"StoreFollower(store={self._store.url!r}, revision={self._revision}, "
            f"following={self.following})"
        )

    # ------------------------------------------------------------------ where it stands
    @property
    def store(self) -> Store:
        """The store followed."""
        return self._store

    @property
    def revision(self) -> int:
        """The store revision served (set after the content is swapped in, so that a reader
        who reads it first never pairs a revision with older content)."""
        return self._revision

    @property
    def store_head(self) -> int:
        """The latest revision the store reported."""
        return self._head

    @property
    def healthy(self) -> bool:
        """Whether the last read of the store and the last apply succeeded."""
        return self._degraded is None

    @property
    def degraded_reason(self) -> str | None:
        """Why the follower is degraded (it serves its last revision meanwhile)."""
        return self._degraded

    @property
    def following(self) -> bool:
        """Whether the background thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def listening(self) -> bool:
        """Whether a LISTEN connection is open (PostgreSQL)."""
        return self._listener is not None

    def holds(self, entry_id: str) -> bool:
        """Whether the store held ``entry_id`` at the revision served (hotline entries from
        contacts are not the store's)."""
        return entry_id in self._content

    def status(self) -> ReplicaStatus:
        """A snapshot of :class:`ReplicaStatus`."""
        now = self._clock()
        revision, head, since = self._revision, self._head, self._behind_since
        behind = head > revision
        return ReplicaStatus(
            store=self._store.url,
            revision=revision,
            store_head=head,
            lag_revisions=max(0, head - revision),
            lag_seconds=round(now - since, 3) if behind and since is not None else 0.0,
            contact_age_s=round(max(0.0, now - self._last_contact), 3),
            healthy=self._degraded is None,
            degraded_reason=self._degraded,
            following=self.following,
            listening=self.listening,
        )

    # ------------------------------------------------------------------ catching up
    def sync(self, until: int | None = None) -> int:
        """Apply every revision the store holds beyond the one served; the revision served.

        With ``until``, return at once when that revision is already served.

        Raises:
            StoreError: the store failed (:class:`~walletfaq.errors.StoreUnavailableError`
                when unreachable); the follower is degraded and serves its last revision.
            WalletFAQError: a change could not be applied (degraded too).
        """
        with self._sync_lock:
            if until is not None and self._revision >= until:
                return self._revision
            try:
                head = self._store.head()
                self._seen(head)
                if head < self._revision:
                    self._restart_from_snapshot()
                while self._revision < self._head:
                    changes = self._store.changes_since(self._revision, limit=FEED_BATCH)
                    if not changes:
                        break
                    self._seen(changes[-1].revision)
                    self._apply(changes)
            except Exception as exc:
                self._fail(exc)
                raise
            self._recovered()
            return self._revision

    def write(
        self,
        changes: Sequence[Change],
        *,
        author: str,
        reason: str | None = None,
        if_match: int | None = None,
    ) -> Revision:
        """Apply ``changes`` to the store as one revision (:meth:`Store.apply
        <walletfaq.store.Store.apply>`), then serve it before returning (read-your-writes).

        The edit is committed when this returns. If the store fails right after the commit,
        before the follower read it back, the revision is returned all the same (it is
        committed) and served as soon as the store answers again (the follower is degraded
        meanwhile).

        Raises:
            StoreConflictError: ``if_match`` is older than a touched entry's last change.
            StoreUnavailableError: the store could not be reached; nothing was written.
            StoreError: the store refused the edit (see :meth:`Store.apply`).
        """
        revision = self._store.apply(changes, author=author, reason=reason, if_match=if_match)
        try:
            self.sync(until=revision.number)
        except WalletFAQError as exc:
            logger.warning(
                "revision %d is committed but not served yet (%s); it will be when the store "
                "answers again",
                revision.number,
                exc,
            )
        return revision

    def _seen(self, head: int) -> None:
        now = self._clock()
        self._last_contact = now
        if head > self._head:
            self._head = head
        if self._head > self._revision and self._behind_since is None:
            self._behind_since = now

    def _apply(self, versions: Sequence[EntryVersion]) -> None:
        """Serve the content after ``versions`` (in revision order): one index build."""
        content = dict(self._content)
        for version in versions:
            if version.entry is None:
                content.pop(version.entry_id, None)
            else:
                content[version.entry_id] = version
        self._swap_in(content, versions[-1].revision)

    def _restart_from_snapshot(self) -> None:
        """The store is behind the revision served (restored from a backup, or replaced):
        serve its content as it is now."""
        head, versions = self._store.snapshot()
        logger.warning(
            "the store %s is at revision %d, behind the %d served (restored or replaced?); "
            "serving its content as it is now",
            self._store.url,
            head,
            self._revision,
        )
        self._head = head
        self._swap_in({v.entry_id: v for v in versions if v.entry is not None}, head)

    def _swap_in(self, content: dict[str, EntryVersion], revision: int) -> None:
        ordered = sorted(content.values(), key=lambda v: v.position)
        entries: list[FAQEntry] = [v.entry for v in ordered if v.entry is not None]
        if self._contacts is not None:
            entries += contact_entries(self._contacts).entries
        target = self._target
        try:
            with target._edit_lock:
                target._apply(target._state, entries)
        except WalletFAQError as exc:
            raise WalletFAQError(
                f"revision {revision} of {self._store.url} cannot be served: {exc}; still "
                f"serving revision {self._revision}"
            ) from None
        self._content = content
        self._revision = revision  # after the swap: see the property
        if self._revision >= self._head:
            self._behind_since = None
        logger.debug("serving revision %d of %s", revision, self._store.url)

    def _fail(self, exc: BaseException) -> None:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if reason != self._degraded:
            logger.warning(
                "following %s: %s; serving revision %d meanwhile",
                self._store.url,
                reason,
                self._revision,
            )
        self._degraded = reason

    def _recovered(self) -> None:
        if self._degraded is not None:
            logger.info("following %s again, at revision %d", self._store.url, self._revision)
        self._degraded = None

    # ------------------------------------------------------------------ the thread
    def start(self) -> StoreFollower:
        """Follow the store in a background (daemon) thread until :meth:`close`."""
        if self._stop.is_set():
            raise StoreError("this follower was closed; make a new one with from_store()")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"walletfaq-follow {self._store.url}", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop following (the content served stays), close the LISTEN connection and, when
        the follower opened it, the store."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self._drop_listener(None)
        if self._owns_store:
            self._store.close()

    def wake(self) -> None:
        """Read the store now instead of at the next poll."""
        self._wake.set()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            if self._listen and self._listener is None and self._clock() >= self._listen_retry_at:
                self._connect_listener()  # before the read: no commit falls between the two
            try:
                self.sync()
            except Exception as exc:  # degraded (logged by sync); retried with backoff
                failures += 1
                # a store that fails comes back by itself; a change that cannot be applied
                # needs a fix in the store: try it again less often (it embeds each time)
                cap = RETRY_MAX_S if isinstance(exc, StoreError) else APPLY_RETRY_MAX_S
                self._wait(min(cap, RETRY_FIRST_S * 2 ** min(failures - 1, 10)))
                continue
            failures = 0
            self._wait(self.poll_interval)

    def _wait(self, seconds: float) -> None:
        """Until a notification, :meth:`wake`, :meth:`close`, or ``seconds``."""
        deadline = self._clock() + seconds
        while not self._stop.is_set():
            left = deadline - self._clock()
            if left <= 0:
                return
            if self._wake.is_set():
                self._wake.clear()
                return
            step = min(_WAIT_SLICE_S, left)
            if self._listener is None:
                self._wake.wait(step)
                continue
            try:
                for _notification in self._listener.notifies(timeout=step, stop_after=1):
                    return
            except Exception as exc:  # the connection broke: read the store now, then poll
                self._drop_listener(exc)  # until it is back (the read tells if the store is)
                return

    def _connect_listener(self) -> None:
        import psycopg

        from walletfaq.store import NOTIFY_CHANNEL

        url = self._store.engine.url.set(drivername="postgresql")
        try:
            connection = psycopg.connect(
                url.render_as_string(hide_password=False),
                autocommit=True,
                connect_timeout=LISTEN_CONNECT_TIMEOUT_S,
                application_name=LISTENER_NAME,
            )
            connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except Exception as exc:
            self._listen_failures += 1
            wait = min(LISTEN_RETRY_MAX_S, 0.5 * 2 ** min(self._listen_failures - 1, 10))
            self._listen_retry_at = self._clock() + wait
            if self._listen_failures == 1:
                logger.warning(
                    "cannot listen for changes on %s (%s); polling every %g s meanwhile",
                    self._store.url,
                    " ".join(str(exc).split()),
                    self.poll_interval,
                )
            return
        self._listener = connection
        if self._listen_failures:
            logger.info("listening for changes on %s again", self._store.url)
        self._listen_failures = 0

    def _drop_listener(self, error: BaseException | None) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        if error is not None:
            logger.warning(
                "the LISTEN connection to %s broke (%s); polling until it is back",
                self._store.url,
                " ".join(str(error).split()) or type(error).__name__,
            )
        try:
            listener.close()
        except Exception:  # already broken
            pass


def check_poll_interval(value: float) -> float:
    """``value`` as a poll interval in seconds (a positive, finite number).

    Raises:
        WalletFAQError: anything else, naming it.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise WalletFAQError(f"poll_interval must be a positive number of seconds, got {value!r}")
    return float(value)


__all__ = [
    "DEFAULT_POLL_INTERVAL_S",
    "ReplicaStatus",
    "StoreFollower",
    "check_poll_interval",
]
