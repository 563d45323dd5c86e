"""The HTTP connection limits uvicorn lacks: a deadline for reading each request, and the
check of the address to listen on before anything loads.

uvicorn (0.3x–0.5x) closes a connection idle *between* requests after ``timeout_keep_alive``,
but sets no deadline while a request is being received: a client that opens a connection and
sends nothing, or one byte of its headers a second (slowloris), holds that connection, its file
descriptor and its buffers for ever. :class:`ReadTimeoutH11Protocol` is uvicorn's h11 protocol
with that deadline: a request (head and body) must arrive in full within ``read_timeout_s``
seconds of its first byte, or of the connection opening; otherwise the connection is closed.
Requests being answered are not affected (their time is the app's per-request timeout).

:func:`listen_check` binds the address once, so that a port out of range, a host that does not
resolve or is not this machine's, or a port in use is a one-line error before a model loads.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import socket
from typing import Any

from walletfaq.errors import WalletFAQError
from walletfaq.service.extra import check_server_dependencies

check_server_dependencies()

import h11  # noqa: E402
from uvicorn.protocols.http.h11_impl import H11Protocol  # noqa: E402

READ_TIMEOUT_S = 10.0
"""Default seconds a client has to send a whole request (headers and body) once it started,
or to start one after connecting; past it the connection is closed (no answer)."""

MAX_HEAD_BYTES = 16 * 1024
"""The largest request head (request line and headers) read; larger ones get 400 (h11)."""


class ReadTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 HTTP/1.1 protocol, plus a deadline for receiving each request.

    Create it through :func:`http_protocol` (uvicorn's ``http=`` option), which fixes
    ``read_timeout_s``.
    """

    def __init__(self, *args: Any, read_timeout_s: float = READ_TIMEOUT_S, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout_s = read_timeout_s
        self._read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_deadline()  # a connection that never sends a byte is closed too

    def data_received(self, data: bytes) -> None:
        if self._read_deadline is None and self.conn.their_state is h11.IDLE:
            self._start_deadline()  # the first byte of the next request on this connection
        super().data_received(data)
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self._cancel_deadline()  # received in full: the app answers it

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _start_deadline(self) -> None:
        self._cancel_deadline()
        self._read_deadline = self.loop.call_later(self.read_timeout_s, self._read_timed_out)

    def _cancel_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        self._read_deadline = None
        if self.conn.their_state is h11.DONE or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app stops waiting for the rest of the body
            self.cycle.message_event.set()
        self.transport.close()


def http_protocol(
    read_timeout_s: float = READ_TIMEOUT_S,
) -> functools.partial[ReadTimeoutH11Protocol]:
    """uvicorn's ``http=`` option: :class:`ReadTimeoutH11Protocol` with this deadline (a
    ``functools.partial`` of a module-level class, so worker processes can unpickle it).

    Raises:
        WalletFAQError: ``read_timeout_s`` is not a positive finite number of seconds.
    """
    check_read_timeout(read_timeout_s)
    return functools.partial(ReadTimeoutH11Protocol, read_timeout_s=float(read_timeout_s))


KEEP_ALIVE_S = 5
"""Seconds an idle keep-alive connection is kept open between requests (uvicorn's default)."""


def uvicorn_options(read_timeout_s: float = READ_TIMEOUT_S) -> dict[str, Any]:
    """The options :func:`walletfaq.service.serve` gives ``uvicorn.run``/``uvicorn.Config``
    for connections: this module's protocol with ``read_timeout_s``, :data:`KEEP_ALIVE_S` and
    :data:`MAX_HEAD_BYTES`.

    Raises:
        WalletFAQError: as :func:`http_protocol`.
    """
    return {
        "http": http_protocol(read_timeout_s),
        "timeout_keep_alive": KEEP_ALIVE_S,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
    }


def check_read_timeout(read_timeout_s: object) -> None:
    """Refuse a read timeout that is not a positive finite number of seconds."""
    if (
        isinstance(read_timeout_s, bool)
        or not isinstance(read_timeout_s, (int, float))
        or not 0 < read_timeout_s < float("inf")
    ):
        raise WalletFAQError(
            f"read_timeout_s (--read-timeout) must be a positive number of seconds, got "
            f"{read_timeout_s!r}"
        )


def listen_check(host: object, port: object) -> None:
    """Check that this process can listen on ``host``:``port`` (TCP), by binding it once.

    Raises:
        WalletFAQError: ``port`` is not an int in 1–65535, ``host`` is empty or not a string,
            does not resolve, is not an address of this machine, or the port is in use or
            needs privileges.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise WalletFAQError(f"port (--port) must be an integer from 1 to 65535, got {port!r}")
    if not isinstance(host, str) or not host.strip():
        raise WalletFAQError(
            f"host (--host) must be an address such as 127.0.0.1 or 0.0.0.0, got {host!r}"
        )
    where = f"cannot listen on {host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise WalletFAQError(
            f"{where}: the host does not resolve ({exc}); give an IP address of this machine, "
            "e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"
        ) from None
    try:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            probe.bind(address)
    except OSError as exc:
        advice = {
            errno.EADDRINUSE: "another process listens there; choose another --port",
            errno.EACCES: "ports below 1024 need privileges; choose a port from 1024",
            errno.EADDRNOTAVAIL: "that is not an address of this machine; use 127.0.0.1 or 0.0.0.0",
        }.get(exc.errno or 0, "choose another --host or --port")
        raise WalletFAQError(f"{where}: {exc.strerror or exc}; {advice}") from None


__all__ = [
    "KEEP_ALIVE_S",
    "MAX_HEAD_BYTES",
    "READ_TIMEOUT_S",
    "ReadTimeoutH11Protocol",
    "check_read_timeout",
    "http_protocol",
    "listen_check",
    "uvicorn_options",
]
