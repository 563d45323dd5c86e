"""The query log of live traffic, written off the request path.

:class:`QueryLog` (:mod:`~walletfaq.retrieval.traffic.query_log`) queues query records and
writes them to the store of record in batches from a background thread; :func:`purge_older_than`
applies a retention period. :class:`LoggedRetriever`
(:mod:`~walletfaq.retrieval.traffic.logged_retriever`) wraps a retriever so that every
``ask``/``answer`` is logged and returns a ``request_id`` for :meth:`LoggedRetriever.feedback`.
Needs the store extra (``pip install 'walletfaq[store]'``).
"""

from __future__ import annotations

from walletfaq.retrieval.traffic.logged_retriever import (
    AnswersQuestions,
    LoggedAnswer,
    LoggedHits,
    LoggedRetriever,
    loggable_question,
    logged_hits,
)
from walletfaq.retrieval.traffic.query_log import QueryLog, purge_older_than

__all__ = [
    "AnswersQuestions",
    "LoggedAnswer",
    "LoggedHits",
    "LoggedRetriever",
    "QueryLog",
    "loggable_question",
    "logged_hits",
    "purge_older_than",
]
