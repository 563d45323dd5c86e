"""Property-based tests generated from the service's OpenAPI schema (Schemathesis): whatever
schema-shaped (positive) or deliberately malformed (negative) request an operation gets, the
answer is never a 5xx. Runs in process against the ASGI app (no network), with the admin
token set so that the edit and reload endpoints are exercised too, persisting to a saved
index directory.

(Schemathesis' ``pytest.from_fixture`` does not run under pytest 9, so each operation's
strategy is driven by Hypothesis directly; the examples are bounded and derandomized.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the [serve] extra")
schemathesis = pytest.importorskip("schemathesis", reason="needs schemathesis (test extra)")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from walletfaq import FAQRetriever  # noqa: E402
from walletfaq.service import ServerSettings, create_app  # noqa: E402

from .conftest import HashEncoder  # noqa: E402

TOKEN = "admin-secret"
EXAMPLES = 12
"""Examples per operation and generation mode: the whole file runs in seconds."""


@pytest.fixture
def api_schema(tmp_path: Path, tiny_corpus):  # type: ignore[no-untyped-def]
    """The schema of an app serving a saved tiny index, edits persisted there."""
    saved = FAQRetriever.build(tiny_corpus, model=HashEncoder()).save(tmp_path / "idx")
    retriever = FAQRetriever.load(saved, model=HashEncoder())
    retriever.threshold = 0.9
    options = ServerSettings(workers=2, admin_token=TOKEN, persist_dir=saved, reload_interval_s=0)
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(retriever, options))


def test_the_schema_covers_the_admin_endpoints(api_schema) -> None:
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert {
        "POST /v1/entries",
        "PUT /v1/entries/{entry_id}",
        "DELETE /v1/entries/{entry_id}",
        "POST /v1/reload",
        "POST /v1/ask",
    } <= labels


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_gets_a_server_error(api_schema, mode) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        try:
            check()
        except Unsatisfiable:
            # an operation without parameters or body (GET /healthz) has no malformed form
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:
            exc.add_note(f"operation: {operation.label} ({mode.value} cases)")
            raise
