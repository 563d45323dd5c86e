"""The query log, feedback and retention: the store's record of live traffic.

Every question answered is one row of ``walletfaq_queries`` (:meth:`TrafficLog.log_query`),
keyed by the request id the caller returned to the user; feedback on it is at most one row of
``walletfaq_feedback`` (:meth:`TrafficLog.add_feedback`). The store masks personal details
(:mod:`walletfaq.data.privacy`) in questions and comments itself before writing them. Old
traffic is deleted with :meth:`TrafficLog.purge_traffic`. Nothing here leaves the store: the
log is read through these methods only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select

from walletfaq.data.queries import LabelledQuery
from walletfaq.errors import StoreError
from walletfaq.store import schema
from walletfaq.store.core import StoreCore
from walletfaq.store.queries import utc
from walletfaq.store.traffic_records import (
    DECISIONS,
    MAX_COMMENT_CHARS,
    MAX_LOGGED_HITS,
    MAX_QUESTION_CHARS,
    Feedback,
    LoggedQuery,
    QueryHit,
    QueryRecord,
    UnknownRequestError,
    check_choice,
    check_entry_id,
    check_limit,
    check_number,
    check_request_id,
    check_source,
    masked_text,
    utc_time,
)

LABEL_NAMED = "feedback"
"""The ``style`` of a labelled query whose entry the user named."""
LABEL_CONFIRMED = "helpful"
"""The ``style`` of a labelled query whose answer (the top hit) the user found helpful."""


class TrafficLog(StoreCore):
    """The query log and feedback methods of :class:`~walletfaq.store.Store`."""

    def log_query(self, record: QueryRecord) -> None:
        """Add ``record`` to the query log (one transaction; the row is there once this
        returns). The question is cleaned and masked here, whatever the caller did.

        Raises:
            StoreError: a field breaks its rule (the message names it), or the request id is
                already in the log.
        """
        self.log_queries([record])

    def log_queries(self, records: Sequence[QueryRecord]) -> None:
        """Add ``records`` to the query log in one transaction, all or none (one commit for
        many queries: a service logging in the background writes its queue this way).

        Raises:
            StoreError: a record breaks a rule (the message names it and its place), or a
                request id is already in the log or twice in ``records``.
        """
        if isinstance(records, QueryRecord) or not isinstance(records, Sequence):
            raise StoreError("log_queries takes a list of QueryRecord")
        rows = []
        for place, record in enumerate(records):
            try:
                rows.append(_query_row(record))
            except StoreError as exc:
                raise StoreError(
                    f"query {place}: {exc}" if len(records) > 1 else str(exc)
                ) from None
        ids = [row["request_id"] for row in rows]
        twice = next((i for i in ids if ids.count(i) > 1), None)
        if twice is not None:
            raise StoreError(f"request id {twice!r} is twice in one log_queries call")
        if not rows:
            return
        try:
            with self._writing() as connection:
                connection.execute(schema.queries.insert(), rows)
        except StoreError:
            logged = self._logged_ids(ids)
            if logged:
                raise StoreError(
                    f"request id {logged[0]!r} is already in the query log of {self.url}; give "
                    "each query a new id (e.g. uuid4().hex)"
                ) from None
            raise

    def query(self, request_id: str) -> LoggedQuery:
        """The logged query ``request_id``.

        Raises:
            UnknownRequestError: no such query in the log.
        """
        request_id = check_request_id(request_id)
        with self._reading() as connection:
            row = connection.execute(
                select(schema.queries).where(schema.queries.c.request_id == request_id)
            ).first()
        if row is None:
            raise UnknownRequestError(request_id, self.url)
        return _logged_query(row)

    def queries(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        decision: str | None = None,
        limit: int | None = None,
    ) -> tuple[LoggedQuery, ...]:
        """Logged queries asked at or after ``since`` and before ``until`` (aware datetimes),
        with ``decision`` if given, oldest first, at most ``limit``."""
        q = schema.queries
        query = select(q).order_by(q.c.created_at, q.c.request_id)
        if since is not None:
            query = query.where(q.c.created_at >= utc_time(since, "since"))
        if until is not None:
            query = query.where(q.c.created_at < utc_time(until, "until"))
        if decision is not None:
            query = query.where(q.c.decision == check_choice(decision, DECISIONS, "decision"))
        limit = check_limit(limit)
        if limit is not None:
            query = query.limit(limit)
        with self._reading() as connection:
            rows = connection.execute(query).all()
        return tuple(_logged_query(row) for row in rows)

    def add_feedback(
        self,
        request_id: str,
        helpful: bool,
        entry_id: str | None = None,
        comment: str | None = None,
    ) -> Feedback:
        """Record a user's feedback on the logged query ``request_id`` (one transaction).

        Feedback is one row per request. The rule: the first feedback creates it; the same
        feedback again (same ``helpful``, ``entry_id`` and masked ``comment``) changes nothing
        and returns the row as it is; different feedback replaces it (``created_at`` kept,
        ``updated_at`` moves). Concurrent calls for one request queue on the query's row.

        Args:
            request_id: the id the answer returned.
            helpful: whether the answer helped.
            entry_id: the entry the user says was right (checked against the id grammar,
                not against the corpus: the log may outlive an entry).
            comment: the user's words (cleaned, masked, at most
                :data:`~walletfaq.store.traffic_records.MAX_COMMENT_CHARS` characters).

        Raises:
            UnknownRequestError: no such query in the log.
            StoreError: a field breaks its rule.
        """
        request_id = check_request_id(request_id)
        if not isinstance(helpful, bool):
            raise StoreError(f"helpful must be True or False, got {helpful!r}")
        if entry_id is not None:
            entry_id = check_entry_id(entry_id, "the feedback's entry_id")
        comment = masked_text(comment, "the feedback comment", MAX_COMMENT_CHARS, required=False)
        with self._writing() as connection:
            known = connection.execute(
                select(schema.queries.c.request_id)
                .where(schema.queries.c.request_id == request_id)
                .with_for_update()
            ).first()
            if known is None:
                raise UnknownRequestError(request_id, self.url)
            f = schema.feedback
            row = connection.execute(select(f).where(f.c.request_id == request_id)).first()
            values = {"helpful": helpful, "entry_id": entry_id, "comment": comment}
            if row is not None and all(getattr(row, k) == v for k, v in values.items()):
                return _feedback(row)
            now = datetime.now(timezone.utc)
            if row is None:
                connection.execute(
                    f.insert().values(
                        request_id=request_id, created_at=now, updated_at=now, **values
                    )
                )
                return Feedback(request_id, helpful, entry_id, comment, now, now)
            connection.execute(
                f.update().where(f.c.request_id == request_id).values(updated_at=now, **values)
            )
            return Feedback(request_id, helpful, entry_id, comment, utc(row.created_at), now)

    def feedback(self, since: datetime | None = None) -> tuple[Feedback, ...]:
        """Feedback given or changed at or after ``since`` (all without), oldest first."""
        f = schema.feedback
        query = select(f).order_by(f.c.updated_at, f.c.request_id)
        if since is not None:
            query = query.where(f.c.updated_at >= utc_time(since, "since"))
        with self._reading() as connection:
            rows = connection.execute(query).all()
        return tuple(_feedback(row) for row in rows)

    def labelled_queries(self, since: datetime | None = None) -> tuple[LabelledQuery, ...]:
        """Labelled queries learnt from feedback, for tuning and calibration: the logged
        (masked) question with the entry that answers it.

        A query is labelled when its feedback names an ``entry_id`` (that entry, style
        ``"feedback"``), or says ``helpful`` about an *answered* query without naming one (its
        top hit, style ``"helpful"``). Helpful feedback on a clarify or hand-off names no
        single entry and is left out, as is "not helpful" without an entry. Queries asked at
        or after ``since`` (all without), oldest first.
        """
        q, f = schema.queries, schema.feedback
        query = (
            select(q.c.question, q.c.decision, q.c.hits, f.c.helpful, f.c.entry_id)
            .join(f, f.c.request_id == q.c.request_id)
            .order_by(q.c.created_at, q.c.request_id)
        )
        if since is not None:
            query = query.where(q.c.created_at >= utc_time(since, "since"))
        with self._reading() as connection:
            rows = connection.execute(query).all()
        labelled: list[LabelledQuery] = []
        for row in rows:
            if row.entry_id is not None:
                labelled.append(LabelledQuery(row.question, (row.entry_id,), LABEL_NAMED))
                continue
            hits = _hits(row.hits)
            if row.helpful and row.decision == "answer" and hits:
                labelled.append(LabelledQuery(row.question, (hits[0].entry_id,), LABEL_CONFIRMED))
        return tuple(labelled)

    def purge_traffic(self, older_than: datetime) -> int:
        """Delete the logged queries asked before ``older_than`` (an aware datetime), with
        their feedback, in one transaction (the retention period).

        Returns:
            How many logged queries were deleted (their feedback rows went with them).
        """
        cut = utc_time(older_than, "older_than")
        q, f = schema.queries, schema.feedback
        old = select(q.c.request_id).where(q.c.created_at < cut)
        with self._writing() as connection:
            connection.execute(f.delete().where(f.c.request_id.in_(old)))
            deleted = connection.execute(q.delete().where(q.c.created_at < cut)).rowcount
        return int(deleted)

    def _logged_ids(self, ids: list[str]) -> list[str]:
        q = schema.queries
        with self._reading() as connection:
            found = connection.execute(select(q.c.request_id).where(q.c.request_id.in_(ids)))
            return sorted(found.scalars())


def check_query_record(record: QueryRecord) -> None:
    """Raise the StoreError that :meth:`TrafficLog.log_query` would raise for a field of
    ``record`` (nothing is written, and the request id is not looked up in the log): a
    background writer uses it to tell a bad record from a failing store."""
    _query_row(record)


def _query_row(record: QueryRecord) -> dict[str, Any]:
    """The ``walletfaq_queries`` row of ``record``, every field checked, the question masked."""
    if not isinstance(record, QueryRecord):
        raise StoreError(f"log_query takes a QueryRecord, got {type(record).__name__}")
    decision = check_choice(record.decision, DECISIONS, "decision")
    hits = _checked_hits(record.hits)
    revision = record.revision
    if revision is not None and (
        isinstance(revision, bool) or not isinstance(revision, int) or revision < 0
    ):
        raise StoreError(f"revision must be a revision number or None, got {revision!r}")
    created = record.created_at
    return {
        "request_id": check_request_id(record.request_id),
        "created_at": datetime.now(timezone.utc)
        if created is None
        else utc_time(created, "created_at"),
        "question": masked_text(
            record.question, "the question", MAX_QUESTION_CHARS, required=decision != "refuse"
        )
        or "",
        "decision": decision,
        "hits": json.dumps([h.to_dict() for h in hits], ensure_ascii=False),
        "top_score": hits[0].score if hits else None,
        "margin": hits[0].score - hits[1].score if len(hits) > 1 else None,
        "revision": revision,
        "latency_ms": check_number(record.latency_ms, "latency_ms", minimum=0.0),
        "source": check_source(record.source),
    }


def _checked_hits(hits: object) -> list[QueryHit]:
    if not isinstance(hits, Sequence) or isinstance(hits, str):
        raise StoreError(f"hits must be a sequence of QueryHit, got {type(hits).__name__}")
    if len(hits) > MAX_LOGGED_HITS:
        raise StoreError(f"{len(hits)} hits; the log keeps at most {MAX_LOGGED_HITS} per query")
    checked: list[QueryHit] = []
    for position, hit in enumerate(hits):
        if not isinstance(hit, QueryHit):
            raise StoreError(f"hit {position} must be a QueryHit, got {type(hit).__name__}")
        entry_id = check_entry_id(hit.entry_id, f"hit {position}'s entry_id")
        score = check_number(hit.score, f"hit {position}'s score")
        if checked and score > checked[-1].score:
            raise StoreError(
                f"hit {position} scores {score!r}, more than hit {position - 1} "
                f"({checked[-1].score!r}); log hits best first"
            )
        checked.append(QueryHit(entry_id, score))
    return checked


def _hits(text: str) -> tuple[QueryHit, ...]:
    return tuple(QueryHit(str(h["id"]), float(h["score"])) for h in json.loads(text))


def _logged_query(row: Any) -> LoggedQuery:
    return LoggedQuery(
        request_id=row.request_id,
        created_at=utc(row.created_at),
        question=row.question,
        decision=row.decision,
        hits=_hits(row.hits),
        top_score=row.top_score,
        margin=row.margin,
        revision=row.revision,
        latency_ms=float(row.latency_ms),
        source=row.source,
    )


def _feedback(row: Any) -> Feedback:
    return Feedback(
        request_id=row.request_id,
        helpful=bool(row.helpful),
        entry_id=row.entry_id,
        comment=row.comment,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )
