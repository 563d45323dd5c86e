"""The gap proposal endpoints, with their models: ``GET /v1/proposals``,
``POST /v1/proposals/{id}/accept`` and ``POST /v1/proposals/{id}/reject``.

Gap mining (``walletfaq gaps``) records proposals in the store of record: add a cluster of
users' questions as alt questions of an entry, or create a new entry. An admin decides each
one here (the admin token's name is the author); every route needs a service that serves a
store of record (``walletfaq serve --store``: the proposals live there and accepting one edits
its entries), else 409, also with ``--log-store`` (a log store holds no entries to edit).

Accepting writes one revision (kind ``proposal``), served by this replica before the answer,
or with ``"stage": true`` stages the change for the next ``walletfaq publish``. A ``new_entry``
proposal needs the new entry's ``answer``, written by a person (422 naming the field without
it); ``answer`` and ``category`` are refused (422) for an ``add_alts`` one. A proposal id
outside its grammar is 400, an unknown one 404, one decided already 409 (a decision is final).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from walletfaq.service.extra import check_server_dependencies

check_server_dependencies()

from fastapi import APIRouter, Query  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

from walletfaq.data.normalize import clean_text  # noqa: E402
from walletfaq.errors import StoreError  # noqa: E402
from walletfaq.service.auth import admin_access  # noqa: E402
from walletfaq.service.errors import (  # noqa: E402
    ConflictError,
    NotConfiguredError,
    StoreDownError,
)
from walletfaq.service.routes.common import (  # noqa: E402
    RequestModel,
    StrictJSONRoute,
    error_responses,
)
from walletfaq.service.state import ServiceState  # noqa: E402
from walletfaq.service.store_edits import decide_proposal, read_proposal  # noqa: E402

PROPOSAL_PATH = "/v1/proposals/{proposal_id}"


class AcceptIn(RequestModel):
    """Body of ``POST /v1/proposals/{id}/accept`` (optional for an ``add_alts`` proposal)."""

    answer: str | None = Field(
        default=None,
        description="new_entry: the new entry's answer, written by a person (required)",
    )
    category: str | None = Field(
        default=None, description="new_entry: the new entry's category (default: gaps)"
    )
    stage: bool = Field(
        default=False,
        strict=True,
        description="stage the change for the next walletfaq publish instead of writing a "
        "revision now",
    )


class ProposalOut(BaseModel):
    """A gap proposal and its decision (:class:`walletfaq.store.Proposal`)."""

    id: str
    time: str = Field(description="when it was recorded (ISO 8601, UTC)")
    kind: Literal["add_alts", "new_entry"]
    target: str | None = Field(description="add_alts: the entry the questions are added to")
    questions: list[str] = Field(description="the users' questions (masked)")
    suggested_question: str | None = Field(description="new_entry: the new entry's question")
    status: Literal["open", "accepted", "rejected"]
    decided_by: str | None
    decided_at: str | None
    revision: int | None = Field(
        description="the revision an acceptance wrote (null while staged, or not accepted)"
    )


class ProposalsOut(BaseModel):
    """The proposals, oldest first."""

    proposals: list[ProposalOut]


class DecisionOut(BaseModel):
    """What a decision did."""

    proposal: ProposalOut
    revision: int | None = Field(
        description="the revision written and served by this replica; null for a rejection "
        "or a staged acceptance"
    )
    staged: bool = Field(description="the accepted change is staged for walletfaq publish")


def make_router(state: ServiceState) -> APIRouter:
    """The proposal routes of the app whose parts are ``state``."""
    settings, served_index = state.settings, state.index
    router = APIRouter(route_class=StrictJSONRoute)
    admin = admin_access(settings)
    errors = error_responses(
        {
            400: "a proposal id outside its grammar, or an entry breaking a corpus rule",
            401: "missing or wrong admin token",
            403: "the admin endpoints are disabled (no admin token configured)",
            404: "no proposal has this id",
            409: "decided already, the content decided against it, or no store of record",
            503: "busy, or the store is unreachable: retry after the Retry-After seconds",
        }
    )

    def store_follower() -> Any:
        follower = served_index.current.retriever.follower
        if follower is None:
            raise NotConfiguredError(
                "gap proposals need a store of record (walletfaq serve --store URL): they live "
                "in the store whose entries accepting them edits"
            )
        return follower

    def checked_id(proposal_id: str) -> str:
        from walletfaq.store.traffic_records import check_request_id

        return check_request_id(proposal_id, "the proposal id")  # a StoreError: 400

    async def open_proposal(proposal_id: str) -> Any:
        follower = store_follower()
        proposal = await asyncio.to_thread(
            read_proposal, follower.store, checked_id(proposal_id), settings.retry_after_s
        )
        if proposal.status != "open":
            raise ConflictError(
                f"proposal {proposal.id} was already {proposal.status} by {proposal.decided_by}; "
                "a decision is final"
            )
        return proposal

    async def decided(
        proposal_id: str, accept: bool, author: str, body: AcceptIn
    ) -> dict[str, Any]:
        result = await state.run_edit(
            lambda: decide_proposal(
                store_follower(),
                proposal_id,
                accept,
                author=author,
                retry_after_s=settings.retry_after_s,
                stage=body.stage,
                answer=body.answer,
                category=body.category,
            )
        )
        return {
            "proposal": result.to_dict(),
            "revision": result.revision,
            "staged": accept and body.stage,
        }

    @router.get(
        "/v1/proposals",
        response_model=ProposalsOut,
        dependencies=[admin],
        responses=errors,
        tags=["gaps"],
        summary="The gap proposals (admin)",
    )
    async def proposals(
        status: Literal["open", "accepted", "rejected"] | None = Query(
            None, description="only those with this status (default: all)"
        ),
    ) -> dict[str, Any]:
        store = store_follower().store
        try:
            found = await asyncio.to_thread(store.proposals, status)
        except StoreError as exc:
            raise StoreDownError.retry_after(
                f"the proposals could not be read: {exc}", settings.retry_after_s
            ) from None
        return {"proposals": [p.to_dict() for p in found]}

    @router.post(
        f"{PROPOSAL_PATH}/accept",
        response_model=DecisionOut,
        responses={**errors, **error_responses({422: "answer missing, or not for this kind"})},
        tags=["gaps"],
        summary="Accept a gap proposal: a new revision (or a staged change)",
    )
    async def accept(
        proposal_id: str, body: AcceptIn | None = None, name: str = admin
    ) -> dict[str, Any]:
        body = body if body is not None else AcceptIn()
        proposal = await open_proposal(proposal_id)
        _check_accept(proposal.kind, proposal.id, body)
        return await decided(proposal.id, True, name, body)

    @router.post(
        f"{PROPOSAL_PATH}/reject",
        response_model=DecisionOut,
        responses=errors,
        tags=["gaps"],
        summary="Reject a gap proposal",
    )
    async def reject(proposal_id: str, name: str = admin) -> dict[str, Any]:
        proposal = await open_proposal(proposal_id)
        return await decided(proposal.id, False, name, AcceptIn())

    return router


def _check_accept(kind: str, proposal_id: str, body: AcceptIn) -> None:
    """422 naming the field: a ``new_entry`` proposal needs an answer; an ``add_alts`` one
    takes neither answer nor category."""
    problems = []
    if kind == "new_entry" and (body.answer is None or not clean_text(body.answer)):
        problems.append(
            (
                "answer",
                "missing",
                f"proposal {proposal_id} is new_entry: write the new entry's answer (the "
                "proposal carries only the users' questions)",
            )
        )
    if kind == "add_alts":
        for field in ("answer", "category"):
            if getattr(body, field) is not None:
                problems.append(
                    (
                        field,
                        "extra_forbidden",
                        f"proposal {proposal_id} is add_alts: {field} is for accepting a "
                        "new_entry proposal",
                    )
                )
    if problems:
        raise RequestValidationError(
            [{"loc": ("body", name), "type": code, "msg": msg} for name, code, msg in problems]
        )


__all__ = ["AcceptIn", "DecisionOut", "ProposalOut", "ProposalsOut", "make_router"]
