"""The HTTP service (walletfaq.service), through FastAPI's TestClient and a tiny corpus."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="needs the [serve] extra")
pytest.importorskip("httpx", reason="needs the [serve] extra")

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from walletfaq import FAQRetriever, WalletFAQError  # noqa: E402
from walletfaq.service import ServerSettings, create_app  # noqa: E402

from .conftest import HashEncoder  # noqa: E402

EXTERNAL_URL = re.compile(r"""https?://(?!(127\.0\.0\.1|localhost)[:/"'])[^\s"'<>)]+""")


class GatedEncoder(HashEncoder):
    """A HashEncoder whose question encoding waits until the test opens the gate, and that
    records how many encodings run at the same time."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Semaphore(0)
        self.running = 0
        self.most_running = 0
        self._lock = threading.Lock()

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        self.entered.release()
        try:
            if not self.gate.wait(timeout=10):
                raise RuntimeError("the test never opened the gate")
            return super().encode_queries(texts)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def retriever(tiny_corpus) -> FAQRetriever:
    return FAQRetriever.build(tiny_corpus, model=HashEncoder())


@pytest.fixture
def client(retriever, monkeypatch) -> Iterator[TestClient]:
    monkeypatch.delenv("WALLETFAQ_READ_TOKEN", raising=False)
    with TestClient(create_app(retriever, ServerSettings(workers=2))) as test_client:
        yield test_client


@pytest.fixture
def gated(tiny_corpus) -> tuple[FAQRetriever, GatedEncoder]:
    encoder = GatedEncoder()
    retriever = FAQRetriever.build(tiny_corpus, model=encoder)
    encoder.entered = threading.Semaphore(0)  # forget the corpus embedding
    return retriever, encoder


def metric(text: str, name: str) -> float:
    """The value of one sample line of a Prometheus text exposition."""
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match is not None, f"{name} not in metrics"
    return float(match.group(1))


# ----------------------------------------------------------------------------- answers
def test_ask_returns_hits_as_the_cli_json_best_first(client, retriever) -> None:
    response = client.post("/v1/ask", json={"question": "怎么退款", "k": 2})
    assert response.status_code == 200
    expected = [hit.to_dict() for hit in retriever.ask("怎么退款", k=2)]
    assert response.json() == {"hits": expected, "request_id": response.headers["X-Request-Id"]}
    assert response.json()["hits"][0]["id"] == "refund"


def test_ask_filters_by_category(client) -> None:
    hits = client.post("/v1/ask", json={"question": "怎么退款", "category": "account"}).json()
    assert {hit["category"] for hit in hits["hits"]} == {"account"}


def test_ask_batch_answers_each_question_in_order(client, retriever) -> None:
    questions = ["登不上去", "怎么退款", "收费吗"]
    response = client.post("/v1/ask_batch", json={"questions": questions, "k": 1})
    assert response.status_code == 200
    assert [hits[0]["id"] for hits in response.json()["results"]] == ["login", "refund", "fees"]


def test_ask_batch_of_no_questions_is_an_empty_result(client) -> None:
    answer = client.post("/v1/ask_batch", json={"questions": []}).json()
    assert answer == {"results": [], "request_ids": []}


def test_answer_is_confident_with_the_entry_answer(client) -> None:
    body = client.post("/v1/answer", json={"question": "登不上去"}).json()
    assert body["confident"] is True
    assert body["hit"]["id"] == "login"
    assert body["message"] == "检查网络并重置密码。"
    assert len(body["candidates"]) == 3


def test_answer_falls_back_to_human_support_when_not_confident(tiny_corpus) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=HashEncoder())
    retriever.threshold = 0.99
    retriever.fallback = "请联系人工客服。"
    with TestClient(create_app(retriever, ServerSettings(workers=1))) as client:
        body = client.post("/v1/answer", json={"question": "今天天气怎么样"}).json()
    assert body["confident"] is False
    assert body["hit"] is None
    assert body["message"] == "请联系人工客服。"
    assert body["candidates"]


def test_entry_is_returned_in_the_corpus_format(client) -> None:
    body = client.get("/v1/entries/login").json()
    assert body == {
        "id": "login",
        "category": "account",
        "question": "无法登录怎么办",
        "answer": "检查网络并重置密码。",
        "alt_questions": ["登不上去", "login failed"],
    }


def test_categories_lists_the_corpus_categories(client) -> None:
    assert client.get("/v1/categories").json() == {"categories": ["account", "money"]}


def test_healthz_and_readyz_report_alive_and_the_loaded_index(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert (ready["entries"], ready["vectors"], ready["model"]) == (5, 15, "hash-test")


# ----------------------------------------------------------------------------- errors
def test_unknown_entry_id_is_404_with_the_id(client) -> None:
    response = client.get("/v1/entries/nope")
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"question": "   "}, "empty"),
        ({"question": "\u200b\u200b"}, "empty"),
        ({"question": "退款", "category": "nope"}, "unknown category 'nope'"),
    ],
)
def test_query_errors_are_400_with_the_retriever_message(client, body, message) -> None:
    response = client.post("/v1/ask", json=body)
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_a_bad_question_in_a_batch_is_400_naming_its_position(client) -> None:
    response = client.post("/v1/ask_batch", json={"questions": ["退款", " "]})
    assert response.status_code == 400
    assert "question 1" in response.json()["detail"]


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"question": 3}',
        b'{"k": 3}',
        b'{"question": "x", "k": 0}',
        b'{"question": "x", "k": "3"}',
        b'{"qustion": "x"}',
        b"[1, 2]",
    ],
)
def test_malformed_json_or_wrong_fields_are_422(client, content: bytes) -> None:
    response = client.post("/v1/ask", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


@pytest.mark.parametrize(
    "path, content",
    [
        ("/v1/ask", b'{"question": "\\ud800abc"}'),
        ("/v1/ask_batch", b'{"questions": ["ok", "\\udfff"]}'),
        ("/v1/answer", b'{"question": "x", "k": "\\ud800"}'),
    ],
)
def test_a_lone_surrogate_is_422_naming_it_never_a_server_error(client, path, content) -> None:
    """JSON can escape a lone surrogate (not Unicode text): refused, and the 422 that echoes
    it still encodes."""
    response = client.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


def test_a_body_over_the_limit_is_413_before_parsing(retriever) -> None:
    app = create_app(retriever, ServerSettings(max_body_bytes=100))
    with TestClient(app) as client:
        response = client.post("/v1/ask", json={"question": "退" * 200})
    assert response.status_code == 413
    assert "100 bytes" in response.json()["detail"]


def test_a_chunked_body_over_the_limit_is_413(retriever) -> None:
    app = create_app(retriever, ServerSettings(max_body_bytes=100))

    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        yield b"x" * 200
        yield b'"}'

    with TestClient(app) as client:
        response = client.post("/v1/ask", content=chunks())
    assert response.status_code == 413


def test_a_question_over_the_limit_is_413(retriever) -> None:
    with TestClient(create_app(retriever, ServerSettings(max_question_chars=10))) as client:
        response = client.post("/v1/ask", json={"question": "退款" * 6})
    assert response.status_code == 413
    assert "12 characters" in response.json()["detail"]


def test_a_batch_over_the_limit_is_413(retriever) -> None:
    with TestClient(create_app(retriever, ServerSettings(max_batch=2))) as client:
        response = client.post("/v1/ask_batch", json={"questions": ["a", "b", "c"]})
    assert response.status_code == 413
    assert "split it" in response.json()["detail"]


def test_settings_reject_bad_values_naming_them() -> None:
    with pytest.raises(WalletFAQError, match="workers must be a positive int, got 0"):
        ServerSettings(workers=0)
    with pytest.raises(WalletFAQError, match="timeout_s"):
        ServerSettings(timeout_s=-1)


# ----------------------------------------------------------------------------- load shedding
async def _two_requests_one_worker(app, second_path: str, second_json=None) -> tuple:
    """Start an ask that blocks in the only worker, then send a second request."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        first = asyncio.create_task(client.post("/v1/ask", json={"question": "怎么退款"}))
        while app.state.pool.in_progress == 0:
            assert not first.done(), "the first request ended before reaching the pool"
            await asyncio.sleep(0.005)
        started = time.perf_counter()
        if second_json is None:
            second = await client.get(second_path)
        else:
            second = await client.post(second_path, json=second_json)
        elapsed = time.perf_counter() - started
        return first, second, elapsed


def test_a_full_queue_answers_503_with_retry_after_at_once(gated) -> None:
    retriever, encoder = gated
    encoder.gate.clear()
    app = create_app(retriever, ServerSettings(workers=1, queue_size=0, retry_after_s=2))

    async def scenario() -> tuple:
        first, second, elapsed = await _two_requests_one_worker(
            app, "/v1/ask", {"question": "登不上去"}
        )
        encoder.gate.set()
        return (await first), second, elapsed

    first, second, elapsed = asyncio.run(scenario())
    assert second.status_code == 503
    assert second.headers["retry-after"] == "2"
    assert "busy" in second.json()["detail"]
    assert elapsed < 1.0
    assert first.status_code == 200


def test_a_request_waits_in_the_queue_when_there_is_room(gated) -> None:
    retriever, encoder = gated
    encoder.gate.clear()
    app = create_app(retriever, ServerSettings(workers=1, queue_size=1))

    async def scenario() -> tuple:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            first = asyncio.create_task(client.post("/v1/ask", json={"question": "怎么退款"}))
            second = asyncio.create_task(client.post("/v1/ask", json={"question": "登不上去"}))
            while app.state.pool.in_progress < 2:
                assert not (first.done() or second.done()), "a request ended before the pool"
                await asyncio.sleep(0.005)
            third = await client.post("/v1/ask", json={"question": "收费吗"})
            encoder.gate.set()
            return await first, await second, third

    first, second, third = asyncio.run(scenario())
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 503)


def test_the_event_loop_answers_while_a_worker_encodes(gated) -> None:
    retriever, encoder = gated
    encoder.gate.clear()
    app = create_app(retriever, ServerSettings(workers=1, queue_size=0))

    async def scenario() -> tuple:
        first, health, elapsed = await _two_requests_one_worker(app, "/healthz")
        encoder.gate.set()
        await first
        return health, elapsed

    health, elapsed = asyncio.run(scenario())
    assert health.status_code == 200
    assert elapsed < 1.0


def test_requests_are_encoded_in_parallel_up_to_the_workers(gated) -> None:
    retriever, encoder = gated
    encoder.gate.clear()
    app = create_app(retriever, ServerSettings(workers=2, queue_size=4))

    async def scenario() -> list:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            tasks = [
                asyncio.create_task(client.post("/v1/ask", json={"question": q}))
                for q in ("怎么退款", "登不上去", "收费吗", "防诈骗")
            ]
            while encoder.running < 2:
                assert not any(task.done() for task in tasks), "a request ended early"
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)  # a third encoding would have started by now
            encoder.gate.set()
            return list(await asyncio.gather(*tasks))

    responses = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [200] * 4
    assert encoder.most_running == 2


def test_a_slow_ask_is_answered_504_after_the_timeout(gated) -> None:
    retriever, encoder = gated
    encoder.gate.clear()
    app = create_app(retriever, ServerSettings(workers=1, timeout_s=0.2))
    try:
        with TestClient(app) as client:
            started = time.perf_counter()
            response = client.post("/v1/ask", json={"question": "怎么退款"})
            elapsed = time.perf_counter() - started
    finally:
        encoder.gate.set()
    assert response.status_code == 504
    assert "0.2 s" in response.json()["detail"]
    assert elapsed < 2.0


# ----------------------------------------------------------------------------- metrics
def test_metrics_count_requests_errors_latency_cache_hits_and_the_index(client) -> None:
    client.post("/v1/ask", json={"question": "怎么退款"})
    client.post("/v1/ask", json={"question": "怎么退款"})  # the retriever's cache answers
    client.get("/v1/entries/nope")
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    ask = 'endpoint="/v1/ask",method="POST",status="200"'
    assert metric(text, f"walletfaq_requests_total{{{ask}}}") == 2
    assert metric(text, 'walletfaq_errors_total{endpoint="/v1/entries/{entry_id}",status="404"}')
    assert metric(text, 'walletfaq_request_duration_seconds_count{endpoint="/v1/ask"}') == 2
    assert metric(text, "walletfaq_questions_total") == 2
    assert metric(text, "walletfaq_cache_hits_total") == 1
    assert metric(text, "walletfaq_entries") == 5
    assert metric(text, "walletfaq_index_vectors") == 15
    assert metric(text, "walletfaq_index_version") == 1
    assert 'walletfaq_index_info{corpus_hash="' in text and 'model="hash-test"' in text


def test_metrics_of_two_apps_do_not_mix(retriever) -> None:
    first = TestClient(create_app(retriever, ServerSettings(workers=1)))
    second = TestClient(create_app(retriever, ServerSettings(workers=1)))
    first.post("/v1/ask", json={"question": "退款"})
    assert "walletfaq_questions_total 1.0" in first.get("/metrics").text
    assert "walletfaq_questions_total 0.0" in second.get("/metrics").text


# ----------------------------------------------------------------------------- auth
@pytest.fixture
def token_client(retriever, monkeypatch) -> Iterator[TestClient]:
    monkeypatch.setenv("WALLETFAQ_READ_TOKEN", "s3cret")
    with TestClient(create_app(retriever)) as test_client:
        yield test_client


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic s3cret", "s3cret"])
def test_read_endpoints_need_the_token_when_one_is_set(token_client, authorization) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for response in (
        token_client.post("/v1/ask", json={"question": "退款"}, headers=headers),
        token_client.get("/v1/entries/login", headers=headers),
        token_client.get("/v1/categories", headers=headers),
    ):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


def test_the_right_token_opens_read_endpoints(token_client) -> None:
    headers = {"Authorization": "Bearer s3cret"}
    assert token_client.post("/v1/ask", json={"question": "退款"}, headers=headers).is_success
    assert token_client.get("/v1/entries/login", headers=headers).is_success


def test_probes_metrics_docs_and_playground_stay_open_with_a_token(token_client) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/"):
        assert token_client.get(path).status_code == 200, path


# ----------------------------------------------------------------------------- docs, page
def test_openapi_schema_lists_every_endpoint(client) -> None:
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) >= {
        "/v1/ask",
        "/v1/ask_batch",
        "/v1/answer",
        "/v1/entries/{entry_id}",
        "/v1/categories",
        "/healthz",
        "/readyz",
        "/metrics",
    }
    assert "bearer" in str(schema["components"]["securitySchemes"]).lower()


def test_docs_page_and_its_assets_are_served_locally(client) -> None:
    page = client.get("/docs").text
    assert "/docs/assets/swagger-ui-bundle.js" in page
    assert EXTERNAL_URL.search(page) is None
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        assert client.get(f"/docs/assets/{asset}").status_code == 200
    assert client.get("/docs/assets/swagger-editor.js").status_code == 404


def test_playground_is_self_contained(client) -> None:
    response = client.get("/")
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert EXTERNAL_URL.search(page) is None
    assert "v1/answer" in page
    assert re.search(r"<(script|link|img)[^>]+(src|href)=", page) is None  # nothing loaded


def test_the_app_mounts_inside_another_asgi_app(retriever) -> None:
    from fastapi import FastAPI

    parent = FastAPI()
    parent.mount("/faq", create_app(retriever, ServerSettings(workers=1)))
    with TestClient(parent) as client:
        hits = client.post("/faq/v1/ask", json={"question": "怎么退款", "k": 1}).json()["hits"]
        docs = client.get("/faq/docs").text
    assert hits[0]["id"] == "refund"
    assert "/faq/openapi.json" in docs and "/faq/docs/assets/swagger-ui.css" in docs
