"""The question endpoints: ``POST /v1/ask``, ``POST /v1/ask_batch`` and ``POST /v1/answer``,
with their request and response models.

Questions are encoded in the app's pool (:meth:`ServiceState.run
<walletfaq.service.state.ServiceState.run>`: 503 when it is full, 504 past the timeout), each
request on the retriever it read once from the served index. Each question gets a request id
(``request_id`` in the body, and the ``X-Request-Id`` header of ``/v1/ask`` and ``/v1/answer``;
``/v1/ask_batch`` answers ``request_ids``, one per question) and is logged under it when the
service logs (:mod:`walletfaq.service.traffic`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from walletfaq.service.extra import check_server_dependencies

check_server_dependencies()

from fastapi import APIRouter, Response  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

from walletfaq.errors import QueryError  # noqa: E402
from walletfaq.index.search import MAX_CLARIFY_MARGIN, clarify_text  # noqa: E402
from walletfaq.retrieval.retriever import FAQRetriever  # noqa: E402
from walletfaq.service.auth import read_access  # noqa: E402
from walletfaq.service.errors import PayloadTooLargeError  # noqa: E402
from walletfaq.service.routes.common import (  # noqa: E402
    RequestModel,
    StrictJSONRoute,
    error_responses,
)
from walletfaq.service.settings import MAX_K  # noqa: E402
from walletfaq.service.state import ServiceState  # noqa: E402
from walletfaq.service.traffic import REQUEST_ID_HEADER, new_request_id  # noqa: E402

if TYPE_CHECKING:
    from walletfaq.index.search import Hit


class AskIn(RequestModel):
    """Body of ``POST /v1/ask``."""

    question: str = Field(description="the user's question", examples=["充值了钱没到账咋办"])
    k: int = Field(5, ge=1, le=MAX_K, strict=True, description="number of hits")
    category: str | None = Field(None, description="only entries of this category")


class AskBatchIn(RequestModel):
    """Body of ``POST /v1/ask_batch``."""

    questions: list[str] = Field(examples=[["登不上去了", "how do refunds work"]])
    k: int = Field(5, ge=1, le=MAX_K, strict=True, description="number of hits per question")
    category: str | None = Field(None, description="only entries of this category")


class AnswerIn(RequestModel):
    """Body of ``POST /v1/answer``."""

    question: str = Field(description="the user's question", examples=["今天天气怎么样"])
    k: int = Field(3, ge=1, le=MAX_K, strict=True, description="number of candidates")
    clarify_margin: float | None = Field(
        None,
        ge=0.0,
        le=MAX_CLARIFY_MARGIN,
        allow_inf_nan=False,
        strict=True,
        description="this request's clarify margin, in [0, 2] (0 = never ask the user to "
        "choose; out of range: 422); null = the service's",
    )


class HitOut(BaseModel):
    """One ranked entry (:class:`walletfaq.index.search.Hit`)."""

    id: str
    category: str
    question: str
    answer: str
    score: float = Field(description="cosine similarity to the best-matching text, at most 1")
    matched: str = Field(description="the entry's question or alt question that matched best")


REQUEST_ID_DESCRIPTION = (
    "the id this question is logged under, for POST /v1/feedback (also the X-Request-Id "
    "header); given even when the service does not log"
)


class AskOut(BaseModel):
    """Answer of ``POST /v1/ask``: hits, best first."""

    hits: list[HitOut]
    request_id: str = Field(description=REQUEST_ID_DESCRIPTION)


class AskBatchOut(BaseModel):
    """Answer of ``POST /v1/ask_batch``: one list of hits per question, in input order."""

    results: list[list[HitOut]]
    request_ids: list[str] = Field(
        description="one request id per question, in input order (each logged on its own)"
    )


class AnswerOut(BaseModel):
    """Answer of ``POST /v1/answer`` (:class:`walletfaq.index.search.Answer`)."""

    question: str
    confident: bool = Field(
        description="whether an entry answers (false for a handoff and for a refusal)"
    )
    decision: Literal["answer", "clarify", "handoff", "refuse"] = Field(
        description="answer: a confident entry; clarify: two or more entries close to each "
        "other above the threshold, ask the user to choose among the options; handoff: where "
        "to reach human support; refuse: a harmful request (fraud, theft, laundering, "
        "bypassing verification, other people's data, prompt injection), answered with the "
        "safety message"
    )
    reason: str = Field(description="why, in a few words, with the scores and the margin")
    message: str = Field(
        description="the entry's answer, the question back with the options numbered, where "
        "to reach human support, or the safety message"
    )
    hit: HitOut | None = Field(description="the best entry when confident, else null")
    options: list[HitOut] = Field(
        description="for a clarify, the 2 or 3 close entries to choose from, best first; else empty"
    )
    candidates: list[HitOut] = Field(description="the top hits (none for a refusal)")
    request_id: str = Field(description=REQUEST_ID_DESCRIPTION)


def make_router(state: ServiceState) -> APIRouter:
    """The question routes of the app whose parts are ``state``."""
    settings, metrics, served_index, traffic = (
        state.settings,
        state.metrics,
        state.index,
        state.traffic,
    )
    router = APIRouter(route_class=StrictJSONRoute)

    def check_question(question: str, label: str = "the question") -> None:
        if len(question) > settings.max_question_chars:
            raise PayloadTooLargeError(
                f"{label} has {len(question)} characters, more than the limit of "
                f"{settings.max_question_chars}; send the user's question, not a document"
            )

    def ask_counted(
        retriever: FAQRetriever, questions: Sequence[str], k: int, category: str | None
    ) -> list[list[Hit]]:
        metrics.questions.inc(len(questions))
        hits = sum(retriever.is_cached(q, k, category) for q in questions)
        if hits:
            metrics.cache_hits.inc(hits)
        if len(questions) == 1:
            return [retriever.ask(questions[0], k=k, category=category)]
        return retriever.ask_batch(list(questions), k=k, category=category)

    def ask_logged(
        retriever: FAQRetriever,
        request_ids: Sequence[str],
        questions: Sequence[str],
        k: int,
        category: str | None,
    ) -> list[list[Hit]]:
        revision = _revision(retriever)  # read before the content: never newer than it
        started = time.perf_counter()
        try:
            results = ask_counted(retriever, questions, k, category)
        except QueryError:
            traffic.record_unusable(request_ids, questions, _ms_since(started), revision)
            raise
        threshold = settings.threshold if settings.threshold is not None else retriever.threshold
        traffic.record_hits(
            request_ids, questions, results, _ms_since(started), threshold, revision
        )
        return results

    read = [read_access(settings)]
    errors = error_responses(
        {
            400: "unusable question or unknown category",
            401: "missing or wrong bearer token (when the server has one)",
            413: "body, question or batch over the limits",
            503: "busy: retry after the Retry-After seconds",
            504: "the ask timed out",
        }
    )

    @router.post(
        "/v1/ask",
        response_model=AskOut,
        dependencies=read,
        responses=errors,
        tags=["questions"],
        summary="Rank the best entries for a question",
    )
    async def ask(body: AskIn, response: Response) -> dict[str, Any]:
        check_question(body.question)
        retriever = served_index.current.retriever  # read once: a reload may swap it later
        request_id = new_request_id()
        (hits,) = await state.run(
            ask_logged, retriever, [request_id], [body.question], body.k, body.category
        )
        response.headers[REQUEST_ID_HEADER] = request_id
        return {"hits": [hit.to_dict() for hit in hits], "request_id": request_id}

    @router.post(
        "/v1/ask_batch",
        response_model=AskBatchOut,
        dependencies=read,
        responses=errors,
        tags=["questions"],
        summary="Rank the best entries for each of several questions",
    )
    async def ask_batch(body: AskBatchIn) -> dict[str, Any]:
        if len(body.questions) > settings.max_batch:
            raise PayloadTooLargeError(
                f"the batch has {len(body.questions)} questions, more than the limit of "
                f"{settings.max_batch}; split it"
            )
        if not body.questions:
            return {"results": [], "request_ids": []}
        for position, question in enumerate(body.questions):
            check_question(question, f"question {position}")
        retriever = served_index.current.retriever
        ids = [new_request_id() for _ in body.questions]
        results = await state.run(ask_logged, retriever, ids, body.questions, body.k, body.category)
        return {
            "results": [[hit.to_dict() for hit in hits] for hits in results],
            "request_ids": ids,
        }

    def answer_counted(
        retriever: FAQRetriever, request_id: str, question: str, k: int, margin: float | None
    ) -> dict[str, Any]:
        metrics.questions.inc()
        if retriever.is_cached(question, k, None):
            metrics.cache_hits.inc()
        margin = settings.clarify_margin if margin is None else margin
        revision = _revision(retriever)
        started = time.perf_counter()
        try:
            outcome = retriever.answer(question, settings.threshold, k, clarify_margin=margin)
        except QueryError:
            traffic.record_unusable([request_id], [question], _ms_since(started), revision)
            raise
        traffic.record_answer(request_id, question, outcome, _ms_since(started), revision)
        if settings.fallback is not None and outcome.decision == "handoff":
            outcome = replace(outcome, message=settings.fallback)  # the service's own
        if settings.clarify_message is not None and outcome.decision == "clarify":
            text = clarify_text(settings.clarify_message, outcome.options)
            outcome = replace(outcome, message=text)
        return outcome.to_dict()

    @router.post(
        "/v1/answer",
        response_model=AnswerOut,
        dependencies=read,
        responses=errors,
        tags=["questions"],
        summary="The answer if confident, the close entries to choose from, or where to reach "
        "human support",
    )
    async def answer(body: AnswerIn, response: Response) -> dict[str, Any]:
        check_question(body.question)
        request_id = new_request_id()
        outcome = await state.run(
            answer_counted,
            served_index.current.retriever,
            request_id,
            body.question,
            body.k,
            body.clarify_margin,
        )
        response.headers[REQUEST_ID_HEADER] = request_id
        return {**outcome, "request_id": request_id}

    return router


def _revision(retriever: FAQRetriever) -> int | None:
    """The store revision ``retriever`` serves (``None`` without a store)."""
    follower = retriever.follower
    return None if follower is None else follower.revision


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


__all__ = [
    "AnswerIn",
    "AnswerOut",
    "AskBatchIn",
    "AskBatchOut",
    "AskIn",
    "AskOut",
    "HitOut",
    "make_router",
]
