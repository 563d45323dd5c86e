"""The service over real sockets: uvicorn in a thread, ``walletfaq serve`` in a subprocess,
and the playground and docs pages in a real (headless) Chromium."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytest.importorskip("fastapi", reason="needs the [serve] extra")
pytest.importorskip("uvicorn", reason="needs the [serve] extra")

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from walletfaq import FAQRetriever  # noqa: E402
from walletfaq.service import ServerSettings, create_app  # noqa: E402

from .browser_support import headless_chromium  # noqa: E402, F401 (a fixture)
from .conftest import HashEncoder  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ThreadedServer:
    """uvicorn serving an app on 127.0.0.1 in a background thread."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live(tiny_corpus, monkeypatch) -> Iterator[ThreadedServer]:
    monkeypatch.delenv("WALLETFAQ_READ_TOKEN", raising=False)
    retriever = FAQRetriever.build(tiny_corpus, model=HashEncoder())
    retriever.threshold = 0.9
    retriever.fallback = "抱歉，没有找到确定的答案，请联系人工客服。"
    with ThreadedServer(create_app(retriever, ServerSettings(workers=2))) as server:
        yield server


def wait_until_ready(process: subprocess.Popen, url: str, seconds: float = 300) -> None:
    """Poll ``/readyz`` until the server answers 200; fail if it exits or takes too long."""
    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, process.communicate()[0]
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "walletfaq serve did not become ready"
        time.sleep(0.5)


def test_create_app_serves_over_a_real_socket_with_uvicorn(live) -> None:
    with httpx.Client(base_url=live.url, timeout=10) as client:
        hits = client.post("/v1/ask", json={"question": "怎么退款", "k": 1}).json()["hits"]
        too_large = client.post("/v1/ask", content=b"x" * 100_000)
        metrics = client.get("/metrics").text
    assert hits[0]["id"] == "refund"
    assert too_large.status_code == 413
    assert 'walletfaq_requests_total{endpoint="/v1/ask",method="POST",status="200"} 1.0' in metrics


# ----------------------------------------------------------------------------- the CLI
@pytest.mark.slow
def test_walletfaq_serve_answers_on_loopback_and_stops_on_sigint(
    tiny_corpus_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real command with the real default model (built once into the user cache)."""
    monkeypatch.delenv("WALLETFAQ_CACHE_DIR", raising=False)
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WALLETFAQ_READ_TOKEN": "t0ken"}
    command = [sys.executable, "-m", "walletfaq", "serve", "--corpus", str(tiny_corpus_file)]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, url)
        auth = {"Authorization": "Bearer t0ken"}
        answer = httpx.post(f"{url}/v1/answer", json={"question": "登不上去了"}, headers=auth)
        refused = httpx.post(f"{url}/v1/answer", json={"question": "登不上去了"})
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0]
    assert answer.status_code == 200, output
    assert answer.json()["candidates"][0]["id"] == "login"
    assert refused.status_code == 401
    assert process.returncode == 0, output
    assert f"127.0.0.1:{port}" in output


def test_walletfaq_serve_rejects_index_and_corpus_together(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "walletfaq", "serve", "--index", "a", "--corpus", "b"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "not allowed with argument" in done.stderr


@pytest.mark.slow
def test_walletfaq_serve_with_two_worker_processes_shares_every_edit(
    tiny_corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--workers 2``: two processes on one port and one index directory; edits accepted by
    either are all saved, and both processes end up serving all of them."""
    psutil = pytest.importorskip("psutil")
    monkeypatch.delenv("WALLETFAQ_CACHE_DIR", raising=False)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WALLETFAQ_ADMIN_TOKEN": "adm1n"}
    env.pop("WALLETFAQ_READ_TOKEN", None)
    index = tmp_path / "idx"
    walletfaq = [sys.executable, "-m", "walletfaq"]
    build = [*walletfaq, "-q", "build", "--corpus", str(tiny_corpus_file), "--out", str(index)]
    subprocess.run(build, env=env, check=True, timeout=600)
    port = free_port()
    serve = [*walletfaq, "serve", "--index", str(index), "--workers", "2", "--port", str(port)]
    process = subprocess.Popen(
        [*serve, "--reload-interval", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    admin = {"Authorization": "Bearer adm1n"}
    names = [f"extra{n}" for n in range(6)]
    try:
        wait_until_ready(process, url)
        workers = [
            child
            for child in psutil.Process(process.pid).children()
            if "spawn_main" in " ".join(child.cmdline())
        ]
        for name in names:  # a new connection each: the kernel spreads them over the workers
            entry = {"category": "money", "question": f"{name} 怎么办", "answer": name}
            edit = httpx.put(f"{url}/v1/entries/{name}", json=entry, headers=admin, timeout=60)
            assert edit.status_code == 200, edit.text
        # the default model edits and answers through its light engine: torch never loads
        torch_loaded = [
            w.pid for w in workers if "libtorch" in Path(f"/proc/{w.pid}/maps").read_text()
        ]
        deadline = time.monotonic() + 60
        while True:  # every answer, from whichever worker, has every edit
            answers = [httpx.get(f"{url}/readyz", timeout=10).json() for _ in range(10)]
            if {answer["entries"] for answer in answers} == {5 + len(names)}:
                break
            assert time.monotonic() < deadline, f"the workers did not converge: {answers}"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0]
    assert len(workers) == 2, output
    assert torch_loaded == []
    assert process.returncode == 0, output
    saved = FAQRetriever.load(index)
    assert set(names) <= set(saved.corpus.ids) and len(saved.corpus) == 5 + len(names)


# ----------------------------------------------------------------------------- the browser
def _record_hosts(page) -> set[str]:  # type: ignore[no-untyped-def]
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).hostname or ""))
    return hosts


def test_playground_shows_ranked_answers_and_the_fallback_in_a_browser(live, browser) -> None:
    page = browser.new_page(viewport={"width": 900, "height": 900})
    hosts = _record_hosts(page)
    page.goto(live.url + "/")
    page.wait_for_selector("#category option[value='money']", state="attached")

    page.fill("#question", "今天天气怎么样")
    page.click("#ask")
    page.wait_for_selector("#fallback")
    assert "人工客服" in page.inner_text("#fallback")

    page.fill("#question", "怎么退款")
    page.click("#ask")
    page.wait_for_selector("#confident")
    hits = page.locator("#hits li.hit")
    assert hits.count() == 5
    first = hits.nth(0)
    assert first.get_attribute("data-id") == "refund"
    assert "怎么退款" in first.inner_text()  # the matched text
    assert "money" in first.inner_text()  # the category
    assert "1.000" in first.inner_text()  # the score
    assert page.screenshot(full_page=True).startswith(b"\x89PNG")  # it renders
    page.close()
    assert hosts == {"127.0.0.1"}  # docs/playground.png: docs/screenshot.py, the bundled index


def test_docs_page_renders_every_endpoint_offline_in_a_browser(live, browser) -> None:
    page = browser.new_page()
    hosts = _record_hosts(page)
    page.goto(live.url + "/docs")
    page.wait_for_selector(".opblock-summary-path")
    paths = {
        text.replace("\u200b", "")
        for text in page.locator(".opblock-summary-path").all_inner_texts()
    }
    page.close()
    assert {"/v1/ask", "/v1/answer", "/v1/entries/{entry_id}", "/metrics"} <= paths
    assert hosts == {"127.0.0.1"}
