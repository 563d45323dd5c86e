"""The feedback endpoint, with its models: ``POST /v1/feedback``, a user's verdict on an answer
the service logged (:meth:`ServiceLog.feedback <walletfaq.service.traffic.ServiceLog.feedback>`).

The body is as strict as the others (unknown fields, ``NaN`` and a non-boolean ``helpful`` are
422). A service that does not log answers 409; else the request id and the entry id are checked
against their grammars (the store's rules, :mod:`walletfaq.store.traffic_records`: 400 naming
the rule) and a comment over ``MAX_COMMENT_CHARS`` (2,000) characters as sent is 413. Feedback
is one row per request: the same feedback again answers the same row, different feedback
replaces it. The store masks personal details in the comment before it writes it, and answers
with the comment as stored.
"""

from __future__ import annotations

from typing import Any

from walletfaq.service.extra import check_server_dependencies

check_server_dependencies()

from fastapi import APIRouter  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

from walletfaq.service.auth import read_access  # noqa: E402
from walletfaq.service.errors import PayloadTooLargeError  # noqa: E402
from walletfaq.service.routes.common import (  # noqa: E402
    RequestModel,
    StrictJSONRoute,
    error_responses,
)
from walletfaq.service.state import ServiceState  # noqa: E402


class FeedbackIn(RequestModel):
    """Body of ``POST /v1/feedback``."""

    request_id: str = Field(description="the request_id of the answer (POST /v1/answer, /v1/ask)")
    helpful: bool = Field(strict=True, description="whether the answer helped")
    entry_id: str | None = Field(
        None, description="the entry the user says was right (the id grammar; need not exist)"
    )
    comment: str | None = Field(
        None,
        description="the user's words (over the store's limit, 2,000 characters: 413); "
        "personal details (phone, card and ID numbers, e-mail) are masked before they are stored",
    )


class FeedbackOut(BaseModel):
    """The feedback as recorded (:class:`walletfaq.store.Feedback`)."""

    request_id: str
    helpful: bool
    entry_id: str | None
    comment: str | None = Field(description="as stored: personal details masked")
    created_at: str = Field(description="when feedback was first given (ISO 8601, UTC)")
    updated_at: str = Field(description="when it last changed (equals created_at until then)")


def make_router(state: ServiceState) -> APIRouter:
    """The feedback route of the app whose parts are ``state``."""
    router = APIRouter(route_class=StrictJSONRoute)

    @router.post(
        "/v1/feedback",
        response_model=FeedbackOut,
        dependencies=[read_access(state.settings)],
        responses=error_responses(
            {
                400: "a request id or entry id outside its grammar",
                401: "missing or wrong bearer token (when the server has one)",
                404: "no logged answer has this request id",
                409: "the service does not log (--no-log, or no log store)",
                413: "a comment over the store's limit (2,000 characters)",
                503: "the log store is unreachable: retry after the Retry-After seconds",
            }
        ),
        tags=["traffic"],
        summary="Say whether an answer helped (idempotent per request)",
    )
    async def feedback(body: FeedbackIn) -> dict[str, Any]:
        state.traffic.require()  # 409 when off: the store (and its rules) may not be installed
        from walletfaq.store.traffic_records import (
            MAX_COMMENT_CHARS,
            check_entry_id,
            check_request_id,
        )

        check_request_id(body.request_id)  # a StoreError naming the rule: 400
        if body.entry_id is not None:
            check_entry_id(body.entry_id, "the entry_id")
        if body.comment is not None and len(body.comment) > MAX_COMMENT_CHARS:
            raise PayloadTooLargeError(
                f"the comment has {len(body.comment):,} characters, more than the limit of "
                f"{MAX_COMMENT_CHARS:,}; shorten it"
            )
        recorded = await state.traffic.feedback(
            body.request_id,
            body.helpful,
            body.entry_id,
            body.comment,
            state.settings.retry_after_s,
        )
        return recorded.to_dict()

    return router


__all__ = ["FeedbackIn", "FeedbackOut", "make_router"]
