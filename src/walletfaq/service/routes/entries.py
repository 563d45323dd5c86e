"""The corpus endpoints and the admin edits, with their models: ``GET /v1/entries`` (a page of
the entries), ``GET /v1/entries/{id}``, ``POST /v1/entries``, ``PUT`` and
``DELETE /v1/entries/{id}``, ``POST /v1/reload`` and ``GET /v1/categories`` (in this order in
the schema).

Every id, in a path or a body, is checked against the one id grammar
(:func:`walletfaq.data.ids.check_id`) before anything else: an id outside it is ``400`` with a
message naming the rule, never trimmed into another id. The id in a path is the rest of the
path (:data:`ENTRY_PATH`), so ``GET /v1/entries/a/b`` is refused for its id too.

Edits and reloads need an admin token (:func:`walletfaq.service.auth.admin_access`). An edit
runs in the app's pool through :meth:`ServedIndex.edit <walletfaq.service.holder.ServedIndex.edit>`
and, with a directory, is saved there before the answer; a reload runs in a thread of its own.
A service that serves a store of record (``walletfaq serve --store``) writes each edit to the
store as one revision instead (:mod:`walletfaq.service.store_edits`: the token's name is its
author, ``?reason=`` its reason, ``If-Match: <revision>`` its condition) and sends the
revision served as the ``ETag`` of ``GET /v1/entries/{id}``. With ``?stage=true`` (a store
only; not with ``If-Match``) the edit is staged in the store instead: ``202`` with the staged
change, not served until ``walletfaq publish``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from walletfaq.service.extra import check_server_dependencies

check_server_dependencies()

from fastapi import APIRouter, Header, Query, Response  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402
from starlette.convertors import Convertor, register_url_convertor  # noqa: E402

from walletfaq.data.ids import ID_RULE, check_id  # noqa: E402
from walletfaq.errors import IndexFormatError, WalletFAQError  # noqa: E402
from walletfaq.index.directory import IfUnchanged  # noqa: E402
from walletfaq.retrieval.retriever import FAQRetriever  # noqa: E402
from walletfaq.service.auth import admin_access, read_access  # noqa: E402
from walletfaq.service.errors import ConflictError, EntryNotFoundError  # noqa: E402
from walletfaq.service.holder import PersistError, Served  # noqa: E402
from walletfaq.service.routes.common import (  # noqa: E402
    RequestModel,
    StrictJSONRoute,
    error_responses,
)
from walletfaq.service.state import ServiceState  # noqa: E402
from walletfaq.service.store_edits import (  # noqa: E402
    IF_MATCH_RULE,
    EditKind,
    EditRequest,
    parse_if_match,
    staged_dict,
    store_edit,
    store_stage,
)


class EntryOut(BaseModel):
    """An FAQ entry in the corpus file format."""

    id: str
    category: str
    question: str
    answer: str
    alt_questions: list[str]


MAX_PAGE = 500
"""Most entries ``GET /v1/entries`` returns at once."""


class EntryPageOut(BaseModel):
    """A page of the entries, in corpus order."""

    entries: list[EntryOut]
    total: int = Field(description="entries in the index (all pages)")
    offset: int = Field(description="position of the first entry of this page")
    limit: int = Field(description="most entries on a page")
    version: int = Field(description="the index version the page was read from")
    revision: int | None = Field(
        None,
        description="the store revision served when the page was read (the page is at least "
        "that new); null without a store",
    )


class EntryIn(RequestModel):
    """An FAQ entry to add or replace, in the corpus file format."""

    id: str | None = Field(
        None, description=f"required by POST; PUT takes it from the path. {ID_RULE}"
    )
    category: str
    question: str
    answer: str
    alt_questions: list[str] = Field(default_factory=list)


class EditOut(BaseModel):
    """What an accepted edit did."""

    id: str
    action: str = Field(description="added, replaced or removed")
    version: int = Field(description="the index version after the edit")
    persisted: bool = Field(
        description="written to the index directory, or committed to the store, before this answer"
    )
    revision: int | None = Field(
        None,
        description="the store revision that holds this edit (served by this replica already); "
        "null without a store",
    )


class StagedOut(BaseModel):
    """What a staged edit (``?stage=true``) staged: not served until ``walletfaq publish``."""

    staged: bool = Field(description="always true")
    position: int = Field(description="its place in the staging order")
    op: str = Field(description="put (add or replace) or delete")
    id: str
    entry: EntryOut | None = Field(description="the content a put stages; null for a delete")
    base_revision: int = Field(description="the revision it was staged on")
    author: str = Field(description="the admin token's name")
    reason: str | None
    created_at: str = Field(description="when it was staged (ISO 8601, UTC)")


class CategoriesOut(BaseModel):
    """The corpus categories."""

    categories: list[str]


class ReloadOut(BaseModel):
    """Answer of ``POST /v1/reload`` (:class:`ReloadResult`)."""

    changed: bool = Field(description="whether a new index is now served")
    version: int = Field(description="the index version served now")
    previous_version: int = Field(description="the index version served before")
    entries: int = Field(description="FAQ entries served now")
    vectors: int = Field(description="vectors in the index served now")
    index_checksum: str | None = Field(
        description="the served directory content's manifest checksum (16 hex digits)"
    )


class _RestOfPath(Convertor[str]):
    """The rest of the path, as it is: any characters, ``/`` and line breaks included.
    (Starlette's ``path`` convertor, ``.*``, stops before a line break and lets ``$`` match
    before a final one: ``/v1/entries/fees%0A`` would be the id ``fees``.)"""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("walletfaq_rest_of_path", _RestOfPath())

ENTRY_PATH = "/v1/entries/{entry_id:walletfaq_rest_of_path}"
"""The path of one entry: the id is the rest of the path, exactly as sent, so that an id the
grammar refuses (``a/b``, ``fees\n``) reaches the route and is answered ``400`` naming the rule,
never an unexplained ``404`` or another entry. The schema and the metrics show the path as
``/v1/entries/{entry_id}``."""


def make_router(state: ServiceState) -> APIRouter:
    """The corpus and edit routes of the app whose parts are ``state``."""
    served_index = state.index
    router = APIRouter(route_class=StrictJSONRoute)
    read = [read_access(state.settings)]
    admin = [admin_access(state.settings)]
    author = admin_access(state.settings)  # the token's name, for the store's log
    bad_id = error_responses({400: "the id is outside the id grammar"})
    edit_errors = error_responses(
        {
            400: "an invalid entry or id",
            401: "missing or wrong admin token",
            403: "edits are disabled (no admin token configured)",
            409: "another save replaced the index directory during the edit; it was not "
            "applied and the new content is served",
            412: "store: the entry changed after the If-Match revision; nothing written",
            500: "the edit could not be persisted; it was not applied",
            503: "busy, or the store is unreachable: retry after the Retry-After seconds",
        }
    )
    staged_answer: dict[int | str, dict[str, Any]] = {
        202: {"model": StagedOut, "description": "stage=true: staged, not served until publish"}
    }
    reason_query = Query(
        None,
        max_length=2000,
        description="store: why (recorded with the revision); a service without a store "
        "refuses it (400)",
    )
    stage_query = Query(
        False,
        description="store: stage the edit for the next walletfaq publish instead of applying "
        "it (202 with the staged change; not with If-Match)",
    )
    if_match_header = Header(
        None,
        alias="If-Match",
        description=f"store: edit only if the entry is unchanged since this revision. "
        f"{IF_MATCH_RULE}",
    )

    def edit_request(
        name: str, reason: str | None, if_match: str | None, stage: bool = False
    ) -> EditRequest:
        request = EditRequest(name, reason, parse_if_match(if_match))
        if served_index.current.retriever.follower is None and (
            reason is not None or if_match is not None or stage
        ):
            raise WalletFAQError(
                "reason, stage and If-Match need a store of record (walletfaq serve --store "
                "URL); this service edits an index directory or memory"
            )
        if stage and if_match is not None:
            raise WalletFAQError(
                "If-Match does not apply to a staged edit (stage=true): walletfaq publish "
                "refuses a staged change whose entry changed after it was staged"
            )
        return request

    async def staged(
        kind: EditKind, entry_id: str, record: dict[str, Any] | None, request: EditRequest
    ) -> JSONResponse:
        follower = served_index.current.retriever.follower
        assert follower is not None  # edit_request checked it
        retry_after = state.settings.retry_after_s
        change = await state.run_edit(
            store_stage, follower.store, kind, entry_id, record, request, retry_after
        )
        return JSONResponse(staged_dict(change), status_code=202)

    @router.get(
        "/v1/entries",
        response_model=EntryPageOut,
        dependencies=read,
        tags=["corpus"],
        summary="A page of the FAQ entries, in corpus order (with the total, for paging)",
    )
    async def entries(
        offset: int = Query(0, ge=0, description="skip this many entries"),
        limit: int = Query(50, ge=1, le=MAX_PAGE, description=f"at most {MAX_PAGE}"),
    ) -> dict[str, Any]:
        served = served_index.current  # one snapshot: the page and its total agree
        revision = _revision(served)  # read before the content: never newer than it
        corpus = served.retriever.corpus
        page = corpus.entries[offset : offset + limit]
        return {
            "entries": [entry.to_dict() for entry in page],
            "total": len(corpus),
            "offset": offset,
            "limit": limit,
            "version": served.version,
            "revision": revision,
        }

    @router.get(
        ENTRY_PATH,
        response_model=EntryOut,
        dependencies=read,
        responses={**bad_id, **error_responses({404: "no entry has this id"})},
        tags=["corpus"],
        summary="One FAQ entry, in the corpus file format",
    )
    async def entry(entry_id: str, response: Response) -> dict[str, object]:
        check_id(entry_id, "the id in the path")
        served = served_index.current
        revision = _revision(served)  # read before the entry: an If-Match never skips a change
        try:
            found = served.retriever.entry(entry_id).to_dict()
        except KeyError:
            raise EntryNotFoundError(f"no entry has id {entry_id!r}") from None
        if revision is not None:
            response.headers["ETag"] = f'"{revision}"'
        return found

    def persisted(edit: Callable[[], object]) -> None:
        try:
            edit()
        except IndexFormatError as exc:  # the save before the swap failed: nothing changed
            raise PersistError(f"the edit was not applied: {exc}") from None

    def edited(
        entry_id: str, action: str, served: Served, revision: int | None = None
    ) -> dict[str, Any]:
        return {
            "id": entry_id,
            "action": action,
            "version": served.version,
            "persisted": served_index.directory is not None or revision is not None,
            "revision": revision,
        }

    def edit_store(
        kind: EditKind, entry_id: str, record: dict[str, Any] | None, request: EditRequest
    ) -> dict[str, Any]:
        def change(retriever: FAQRetriever, _directory: IfUnchanged | None) -> tuple[str, int]:
            assert retriever.follower is not None
            retry_after = state.settings.retry_after_s
            return store_edit(retriever.follower, kind, entry_id, record, request, retry_after)

        (action, revision), served = served_index.edit(change)
        return edited(entry_id, action, served, revision)

    def follows_store() -> bool:
        return served_index.current.retriever.follower is not None

    def add_entry(record: dict[str, Any], request: EditRequest) -> dict[str, Any]:
        if follows_store():
            return edit_store("add", record["id"], record, request)

        def change(retriever: FAQRetriever, directory: IfUnchanged | None) -> str:
            if record["id"] in retriever.corpus:
                raise ConflictError(
                    f"id {record['id']!r} exists; PUT /v1/entries/{{id}} replaces it"
                )
            persisted(lambda: retriever.add([record], persist_to=directory))
            return "added"

        action, served = served_index.edit(change)
        return edited(record["id"], action, served)

    def put_entry(record: dict[str, Any], request: EditRequest) -> dict[str, Any]:
        if follows_store():
            return edit_store("put", record["id"], record, request)

        def change(retriever: FAQRetriever, directory: IfUnchanged | None) -> str:
            replaced = record["id"] in retriever.corpus
            persisted(lambda: retriever.update(record, persist_to=directory))
            return "replaced" if replaced else "added"

        action, served = served_index.edit(change)
        return edited(record["id"], action, served)

    def remove_entry(entry_id: str, request: EditRequest) -> dict[str, Any]:
        if follows_store():
            return edit_store("remove", entry_id, None, request)

        def change(retriever: FAQRetriever, directory: IfUnchanged | None) -> str:
            if entry_id not in retriever.corpus:
                raise EntryNotFoundError(f"no entry has id {entry_id!r}")
            persisted(lambda: retriever.remove([entry_id], persist_to=directory))
            return "removed"

        action, served = served_index.edit(change)
        return edited(entry_id, action, served)

    @router.post(
        "/v1/entries",
        response_model=EditOut,
        status_code=201,
        responses={
            **edit_errors,
            **staged_answer,
            **error_responses({409: "the id exists, or the directory was replaced meanwhile"}),
        },
        tags=["edits"],
        summary="Add an entry (embeds only its texts; persisted before the answer)",
    )
    async def post_entry(
        body: EntryIn,
        name: str = author,
        reason: str | None = reason_query,
        if_match: str | None = if_match_header,
        stage: bool = stage_query,
    ) -> dict[str, Any] | JSONResponse:
        if body.id is None:
            raise WalletFAQError(f"the entry needs an 'id'; {ID_RULE}")
        check_id(body.id, "the body's id")
        request = edit_request(name, reason, if_match, stage)
        if stage:
            return await staged("add", body.id, body.model_dump(), request)
        return await state.run_edit(add_entry, body.model_dump(), request)

    @router.put(
        ENTRY_PATH,
        response_model=EditOut,
        responses={**edit_errors, **staged_answer},
        tags=["edits"],
        summary="Add or replace the entry with this id",
    )
    async def put_entry_route(
        entry_id: str,
        body: EntryIn,
        name: str = author,
        reason: str | None = reason_query,
        if_match: str | None = if_match_header,
        stage: bool = stage_query,
    ) -> dict[str, Any] | JSONResponse:
        check_id(entry_id, "the id in the path")
        if body.id is not None and body.id != entry_id:
            raise WalletFAQError(f"the body's id {body.id!r} differs from the path's {entry_id!r}")
        request = edit_request(name, reason, if_match, stage)
        record = {**body.model_dump(), "id": entry_id}
        if stage:
            return await staged("put", entry_id, record, request)
        return await state.run_edit(put_entry, record, request)

    @router.delete(
        ENTRY_PATH,
        response_model=EditOut,
        responses={**edit_errors, **staged_answer, **error_responses({404: "no such entry"})},
        tags=["edits"],
        summary="Remove the entry with this id",
    )
    async def delete_entry(
        entry_id: str,
        name: str = author,
        reason: str | None = reason_query,
        if_match: str | None = if_match_header,
        stage: bool = stage_query,
    ) -> dict[str, Any] | JSONResponse:
        check_id(entry_id, "the id in the path")
        request = edit_request(name, reason, if_match, stage)
        if stage:
            return await staged("remove", entry_id, None, request)
        return await state.run_edit(remove_entry, entry_id, request)

    @router.post(
        "/v1/reload",
        response_model=ReloadOut,
        dependencies=admin,
        responses={
            **{code: edit_errors[code] for code in (401, 403)},
            **error_responses(
                {
                    409: "the service was not started from an index directory",
                    500: "the directory could not be loaded; the previous index is still served",
                }
            ),
        },
        tags=["edits"],
        summary="Serve the index directory again if it changed on disk",
    )
    async def reload() -> dict[str, Any]:
        """Load the ``--index`` directory and serve it when its manifest checksum differs
        from the one served (``changed``); requests in flight finish on the old index."""
        # a thread outside the ask pool: a reload is never shed, and never blocks the loop
        return (await asyncio.to_thread(served_index.reload)).to_dict()

    @router.get(
        "/v1/categories",
        response_model=CategoriesOut,
        dependencies=read,
        tags=["corpus"],
        summary="The categories usable as `category` filters",
    )
    async def categories() -> dict[str, Any]:
        return {"categories": list(served_index.current.retriever.categories)}

    return router


def _revision(served: Served) -> int | None:
    """The store revision ``served`` holds (``None`` without a store)."""
    follower = served.retriever.follower
    return None if follower is None else follower.revision


__all__ = [
    "CategoriesOut",
    "EditOut",
    "MAX_PAGE",
    "EntryIn",
    "EntryOut",
    "EntryPageOut",
    "ReloadOut",
    "StagedOut",
    "make_router",
]
