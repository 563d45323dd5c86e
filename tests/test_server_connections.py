"""Connections: slow clients are disconnected after the read timeout while everyone else is
answered, and the address to listen on is checked before anything loads (one line, exit 2).

Every server here listens on 127.0.0.1 and every load is bounded (200 slow clients, seconds).
"""

from __future__ import annotations

import pickle
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="needs the [serve] extra")
pytest.importorskip("uvicorn", reason="needs the [serve] extra")

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from walletfaq import Corpus, FAQRetriever, WalletFAQError  # noqa: E402
from walletfaq.cli import main  # noqa: E402
from walletfaq.service import ServerSettings, create_app, serve  # noqa: E402
from walletfaq.service.protocol import listen_check, uvicorn_options  # noqa: E402

from .conftest import TINY_ENTRIES, HashEncoder  # noqa: E402

READ_TIMEOUT_S = 2.0


class SlowAnswerEncoder(HashEncoder):
    """Takes ``delay_s`` per encoding once armed: an answer slower than the read timeout."""

    def __init__(self) -> None:
        super().__init__()
        self.delay_s = 0.0

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        time.sleep(self.delay_s)
        return super()._encode(texts)


class Server:
    """uvicorn serving the app on 127.0.0.1 with the options ``walletfaq serve`` uses."""

    def __init__(self, encoder: HashEncoder) -> None:
        retriever = FAQRetriever.build(Corpus.from_entries(TINY_ENTRIES), model=encoder)
        app = create_app(retriever, ServerSettings(workers=2, timeout_s=30))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            backlog=1024,
            **uvicorn_options(READ_TIMEOUT_S),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def connect(self) -> socket.socket:
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        connection.setblocking(False)
        return connection


@pytest.fixture
def encoder() -> SlowAnswerEncoder:
    return SlowAnswerEncoder()


@pytest.fixture
def server(encoder: SlowAnswerEncoder) -> Iterator[Server]:
    with Server(encoder) as running:
        yield running


def closed_by_server(connection: socket.socket) -> bool:
    try:
        return connection.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def wait_closed(connection: socket.socket, limit_s: float) -> float:
    """Seconds until the server closes ``connection`` (fails past ``limit_s``)."""
    started = time.monotonic()
    while not closed_by_server(connection):
        assert time.monotonic() - started < limit_s, "the server kept the connection open"
        time.sleep(0.05)
    return time.monotonic() - started


# ----------------------------------------------------------------------------- slow clients
def test_two_hundred_slow_clients_are_dropped_while_others_are_answered(server) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    slow = [server.connect() for _ in range(200)]
    answered: list[tuple[int, float]] = []
    stop = threading.Event()

    def ask_meanwhile() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
            while not stop.is_set():
                started = time.perf_counter()
                response = client.post("/v1/ask", json={"question": "怎么退款", "k": 1})
                answered.append((response.status_code, time.perf_counter() - started))
                time.sleep(0.05)

    closed_at: dict[int, float] = {}
    with ThreadPoolExecutor(max_workers=1) as pool:
        asking = pool.submit(ask_meanwhile)
        started = time.monotonic()
        for position in range(int(READ_TIMEOUT_S) + 3):  # one header byte a second each
            for number, connection in enumerate(slow):
                if number in closed_at:
                    continue
                try:
                    connection.send(head[position : position + 1])
                except OSError:
                    closed_at[number] = time.monotonic() - started
                if closed_by_server(connection):
                    closed_at[number] = time.monotonic() - started
            time.sleep(max(0.0, started + position + 1 - time.monotonic()))
        stop.set()
        asking.result()
    for connection in slow:
        connection.close()
    assert len(closed_at) == 200  # every slow client was dropped ...
    assert min(closed_at.values()) >= READ_TIMEOUT_S - 0.1  # ... after the timeout, not before
    assert answered and {status for status, _ in answered} == {200}  # others were answered
    assert max(seconds for _, seconds in answered) < 5.0  # generous: a shared 2-core machine


def test_a_connection_that_never_sends_is_dropped_after_the_timeout(server) -> None:
    seconds = wait_closed(server.connect(), limit_s=READ_TIMEOUT_S + 3)
    assert seconds >= READ_TIMEOUT_S - 0.1


def test_a_request_body_trickling_in_is_dropped_after_the_timeout(server) -> None:
    connection = server.connect()
    connection.send(
        b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{"
    )
    seconds = wait_closed(connection, limit_s=READ_TIMEOUT_S + 3)
    assert seconds >= READ_TIMEOUT_S - 0.5


def test_an_answer_slower_than_the_read_timeout_is_not_cut(server, encoder) -> None:
    encoder.delay_s = READ_TIMEOUT_S + 0.5  # the request arrives at once; the answer is slow
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as client:
        response = client.post("/v1/ask", json={"question": "怎么退款的流程", "k": 1})
    assert response.status_code == 200 and response.json()["hits"][0]["id"] == "refund"


def test_a_keep_alive_connection_serves_one_request_after_another(server) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
        statuses = []
        for _ in range(3):
            statuses.append(client.get("/healthz").status_code)
            time.sleep(READ_TIMEOUT_S / 2)  # idle, but well within the keep-alive time
    assert statuses == [200, 200, 200]


def test_the_protocol_option_reaches_worker_processes_intact() -> None:
    """uvicorn pickles its configuration into each worker process."""
    protocol = uvicorn_options(3.5)["http"]
    copy = pickle.loads(pickle.dumps(protocol))
    assert copy.func is protocol.func and copy.keywords == {"read_timeout_s": 3.5}


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), True, "10"])
def test_a_read_timeout_that_is_not_a_positive_number_is_refused(value) -> None:
    with pytest.raises(WalletFAQError, match="read_timeout_s"):
        uvicorn_options(value)


# ----------------------------------------------------------------------------- the address
@pytest.fixture
def port_in_use() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--port", "99999"], "port (--port) must be an integer from 1 to 65535, got 99999"),
        (["--port", "-1"], "must be an integer from 1 to 65535, got -1"),
        (["--port", "0"], "must be an integer from 1 to 65535, got 0"),
        (["--host", ""], "host (--host) must be an address"),
        (["--host", "999.1.1.1"], "the host does not resolve"),
        (["--host", "8.8.8.8"], "not an address of this machine"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--threads", "-1"], "--threads must be at least 1"),
        (["--queue", "-1"], "queue_size must be an int >= 0"),
        (["--timeout", "nan"], "timeout_s must be a positive number"),
        (["--read-timeout", "0"], "--read-timeout) must be a positive number"),
        (["--reload-interval", "-1"], "reload_interval_s must be a number of seconds >= 0"),
    ],
)
def test_bad_serve_arguments_print_one_line_and_exit_2(argv, message, capsys) -> None:
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("walletfaq: error: ") and message in err


def test_a_port_in_use_is_one_line_and_exit_2(port_in_use, capsys) -> None:
    assert main(["serve", "--port", str(port_in_use)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another process listens there" in err


def test_serve_checks_the_address_before_serving(tiny_corpus) -> None:
    retriever = FAQRetriever.build(tiny_corpus, model=HashEncoder())
    with pytest.raises(WalletFAQError, match="from 1 to 65535"):
        serve(retriever, port=99999)


@pytest.mark.parametrize("port", [1.5, "8000", None, True])
def test_a_port_that_is_not_an_int_is_refused(port) -> None:
    with pytest.raises(WalletFAQError, match="port"):
        listen_check("127.0.0.1", port)
