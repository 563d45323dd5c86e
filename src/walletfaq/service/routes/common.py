"""What the routers share: the strict base of the request bodies (:class:`RequestModel`:
unknown fields refused, every string valid Unicode), :class:`ErrorOut` and the OpenAPI
description of error answers."""

from __future__ import annotations

from typing import Any

from walletfaq.service.extra import check_server_dependencies

check_server_dependencies()

from pydantic import BaseModel, ConfigDict, field_validator  # noqa: E402


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


__all__ = ["ErrorOut", "RequestModel", "check_text", "error_responses"]
