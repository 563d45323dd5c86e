"""What the routers share: the strict JSON of the request bodies (:class:`StrictJSONRoute`:
``NaN``, ``Infinity``, out-of-range numbers, repeated keys and bad UTF-8 are ``422``), the
strict base of their models (:class:`RequestModel`: unknown fields refused, every string valid
Unicode), :class:`ErrorOut` and the OpenAPI description of error answers."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from walletfaq.service.extra import check_server_dependencies

check_server_dependencies()

from fastapi import Request, Response  # noqa: E402
from fastapi.routing import APIRoute  # noqa: E402
from pydantic import BaseModel, ConfigDict, field_validator  # noqa: E402

from walletfaq.data.strictjson import JSONProblem, loads  # noqa: E402


def parse_body(body: bytes) -> Any:
    """The JSON value of a request body, parsed as strictly as walletfaq's files are
    (:func:`walletfaq.data.strictjson.loads`): ``NaN``, ``Infinity``, a number out of the range
    of a double (``1e400``) or too long to read, a repeated key and text that is not UTF-8 are
    refused.

    Raises:
        json.JSONDecodeError: what is wrong, in its message (FastAPI answers ``422`` with it).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError(
            "the body is not valid UTF-8; send JSON as UTF-8 text", "", exc.start
        ) from None
    try:
        return loads(text)
    except JSONProblem as exc:
        raise json.JSONDecodeError(exc.message, text, _position(text, exc)) from None


def _position(text: str, problem: JSONProblem) -> int:
    """The offset in ``text`` of ``problem``'s line and column (0 when they are unknown)."""
    if problem.line is None or problem.column is None:
        return 0
    lines = text.split("\n")
    return sum(len(line) + 1 for line in lines[: problem.line - 1]) + problem.column - 1


class StrictJSONRequest(Request):
    """A request whose :meth:`json` is :func:`parse_body`."""

    async def json(self) -> Any:
        """The body's JSON value (:func:`parse_body`), parsed once."""
        if not hasattr(self, "_json"):
            self._json = parse_body(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is read by :class:`StrictJSONRequest`: a body Python's
    :func:`json.loads` would accept but that is not JSON (``{"k": NaN}``) is a ``422``, never
    a value that the error answer could not write back."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler


def check_text(value: str, label: str) -> str:
    """Raise when ``value`` holds a lone surrogate (JSON's ``"\\ud800"`` parses to one): it is
    not Unicode text and could be neither encoded nor saved."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{label} has a lone surrogate (U+{ord(value[exc.start]):04X}) at position "
            f"{exc.start}, which is not valid Unicode text; send UTF-8 text"
        ) from None
    return value


class RequestModel(BaseModel):
    """A request body: unknown fields are refused, and every string is valid Unicode text."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _unicode_text(cls, value: object) -> object:
        """Every string (alone or in a list) is valid Unicode text."""
        if isinstance(value, str):
            check_text(value, "the text")
        elif isinstance(value, list):
            for position, item in enumerate(value):
                if isinstance(item, str):
                    check_text(item, f"item {position}")
        return value


class ErrorOut(BaseModel):
    """Every error answer (422 answers list field errors instead of one message)."""

    detail: str


def error_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route for these error statuses (status: description),
    each answered with :class:`ErrorOut`."""
    return {code: {"model": ErrorOut, "description": text} for code, text in descriptions.items()}


__all__ = [
    "ErrorOut",
    "RequestModel",
    "StrictJSONRequest",
    "StrictJSONRoute",
    "check_text",
    "error_responses",
    "parse_body",
]
