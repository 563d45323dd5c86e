"""Running the service with uvicorn: :func:`serve` (one process, a retriever in memory),
:func:`serve_index` (a saved index directory, one or several worker processes),
:func:`serve_store` (a replica of the store of record, one or several worker processes) and
:func:`app_from_environment` (the factory of those worker processes).

With a store (``walletfaq serve --store URL``), every worker process is a replica of its own:
it builds its index from the store's latest revision (or loads it from the user cache), follows
the change feed (:mod:`walletfaq.retrieval.replica`), and writes the admin edits it accepts to
the store (:mod:`walletfaq.service.store_edits`); no lock file, no shared directory.

Several worker processes (``walletfaq serve --workers N``, :func:`serve_index`) each load the
directory; an edit takes a lock file beside it (``.<name>.walletfaq-serve.lock``), first loads
what another worker saved there, then saves its own, so edits from all workers apply one after
the other and none is lost; the other workers pick each edit up on their next poll
(:class:`walletfaq.service.holder.ServedIndex`).

Connections (:mod:`walletfaq.service.protocol`): the address is checked (bound once) before
anything loads; a client must send each request in full within ``read_timeout_s`` seconds
(default 10) of starting it, or of connecting, else it is disconnected (slow clients cannot hold
connections for ever); idle keep-alive connections close after 5 seconds;
request heads over 16 KiB get 400. Per-client limits (connections per address, request rates)
belong to a reverse proxy in front (nginx ``limit_conn``/``limit_req``).

The query log (:mod:`walletfaq.service.traffic`): every worker process logs through a query log
of its own, to the store it serves (``--store``) or to ``--log-store``; a ``--log-store`` is
opened once here first (created if empty), so that a bad one fails in one line before anything
loads and the workers do not race to create its tables.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import walletfaq.index.directory as index_directory
from walletfaq.data.strictjson import loads
from walletfaq.encoders.threads import worker_environment
from walletfaq.errors import QueryError, StoreError, WalletFAQError
from walletfaq.retrieval.replica import DEFAULT_POLL_INTERVAL_S, check_poll_interval
from walletfaq.retrieval.retriever import FAQRetriever
from walletfaq.service.app import create_app
from walletfaq.service.protocol import READ_TIMEOUT_S, listen_check, uvicorn_options
from walletfaq.service.settings import READ_TOKEN_ENV, ServerSettings, threads_per_process

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger(__name__)

WORKER_CONFIG_ENV = "WALLETFAQ_SERVE_CONFIG"
"""Environment variable through which :func:`serve_index` hands its configuration (JSON) to
the worker processes uvicorn starts (:func:`app_from_environment`)."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    retriever: FAQRetriever,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: ServerSettings | None = None,
    access_log: bool = False,
    log_level: str = "info",
    read_timeout_s: float = READ_TIMEOUT_S,
) -> None:
    """Answer one warm-up question, then serve ``retriever`` with uvicorn (one process) until
    interrupted.

    Args:
        retriever: the retriever served.
        host: the address to listen on (default loopback only; a non-loopback address without
            a read token logs a warning).
        port: the TCP port.
        settings: see :func:`create_app`.
        access_log: log one line per request (uvicorn's access log).
        log_level: uvicorn's log level.
        read_timeout_s: seconds a client has to send a whole request once it started (or to
            start one after connecting) before it is disconnected.

    Raises:
        WalletFAQError: ``host``/``port`` cannot be listened on (out of range, unknown, in
            use) or ``read_timeout_s`` is not a positive number; checked before serving.
    """
    import uvicorn

    listen_check(host, port)
    connections = uvicorn_options(read_timeout_s)
    settings = settings if settings is not None else ServerSettings.from_env()
    _warn_if_exposed(host, settings)
    _prepare_log_store(settings)
    _warm_up(retriever)
    app = create_app(retriever, settings)
    logger.info(
        "serving %r on http://%s:%d (%s threads, %s queued at most; docs at /docs)",
        retriever,
        host,
        port,
        settings.workers,
        settings.queue_limit,
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=access_log,
        log_level=log_level,
        **connections,
    )


def serve_index(
    directory: str | Path,
    *,
    model: str | None = None,
    workers: int = 1,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: ServerSettings | None = None,
    access_log: bool = False,
    log_level: str = "info",
    read_timeout_s: float = READ_TIMEOUT_S,
) -> None:
    """Serve a saved index directory with ``workers`` uvicorn worker processes until
    interrupted (``walletfaq serve --index DIR --workers N``).

    Every process loads ``directory`` itself (one encoder per process), answers on the same
    port, persists the edits it accepts to ``directory`` and picks up those of the others
    (and any replacement of the directory) within ``settings.reload_interval_s`` seconds; see
    :class:`ServedIndex`. With one worker this is :func:`serve` of the loaded index.

    Args:
        directory: the saved index (``settings.persist_dir`` is set to it).
        model: the model questions are encoded with; ``None`` = the one the index names.
        workers: worker processes (``>= 1``).
        host, port, access_log, log_level, read_timeout_s: as for :func:`serve`.
        settings: as for :func:`create_app`; with several workers, ``settings.workers``
            threads run in *each* process, and the settings (tokens included) reach the
            worker processes through the environment variable ``WALLETFAQ_SERVE_CONFIG``.

    Raises:
        IndexFormatError: ``directory`` is not a readable saved index (checked before any
            worker starts).
        WalletFAQError: ``workers`` is not a positive int, or as for :func:`serve`.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise WalletFAQError(f"workers must be a positive int (processes), got {workers!r}")
    listen_check(host, port)
    uvicorn_options(read_timeout_s)  # checked before anything loads
    root = Path(directory).expanduser().absolute()
    index_directory.read_manifest(root)  # a bad directory fails here, in one line, not in N workers
    settings = replace(
        settings if settings is not None else ServerSettings.from_env(), persist_dir=root
    )
    process = _Process(host, port, settings, access_log, log_level, read_timeout_s)
    if workers == 1:
        process.serve(FAQRetriever.load(root, model=model))
        return
    process.serve_workers({"index": str(root), "model": model}, workers)


def serve_store(
    location: str,
    *,
    model: str | None = None,
    workers: int = 1,
    poll_interval: float = DEFAULT_POLL_INTERVAL_S,
    listen: bool = True,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: ServerSettings | None = None,
    access_log: bool = False,
    log_level: str = "info",
    read_timeout_s: float = READ_TIMEOUT_S,
) -> None:
    """Serve the store of record at ``location`` with ``workers`` uvicorn worker processes,
    each a replica that follows the store, until interrupted (``walletfaq serve --store URL``).

    Args:
        location: an SQLite file path or a ``postgresql://`` URL (opened once here first, so
            that a bad one fails in one line before any worker starts).
        model: the model questions and entries are encoded with (default: the default preset).
        workers: worker processes (``>= 1``), each its own replica (its own follower).
        poll_interval, listen: as for :meth:`FAQRetriever.from_store`.
        host, port, access_log, log_level, read_timeout_s, settings: as for
            :func:`serve_index` (``settings.persist_dir`` must be ``None``).

    Raises:
        StoreError: the store cannot be opened or holds no revision.
        WalletFAQError: ``workers`` is not a positive int, or as for :func:`serve`.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise WalletFAQError(f"workers must be a positive int (processes), got {workers!r}")
    listen_check(host, port)
    uvicorn_options(read_timeout_s)  # checked before anything loads
    check_poll_interval(poll_interval)
    settings = settings if settings is not None else ServerSettings.from_env()
    if settings.persist_dir is not None:
        raise WalletFAQError("a store replica has no index directory: leave persist_dir unset")
    process = _Process(host, port, settings, access_log, log_level, read_timeout_s)
    follow: dict[str, Any] = {"poll_interval": poll_interval, "listen": listen}
    if workers == 1:
        with FAQRetriever.from_store(location, model=model, follow=True, **follow) as retriever:
            process.serve(retriever)
        return
    from walletfaq.store import open_store

    with open_store(location) as store:  # a bad store fails here, in one line, not in N workers
        if not store.head():
            raise StoreError(f"{store.url} holds no revision yet; run walletfaq store init first")
    process.serve_workers({"store": location, "model": model, **follow}, workers)


@dataclass(frozen=True)
class _Process:
    """How :func:`serve_index` and :func:`serve_store` run uvicorn: the options they share."""

    host: str
    port: int
    settings: ServerSettings
    access_log: bool
    log_level: str
    read_timeout_s: float

    def serve(self, retriever: FAQRetriever) -> None:
        """:func:`serve` ``retriever`` in this process."""
        serve(
            retriever,
            host=self.host,
            port=self.port,
            settings=self.settings,
            access_log=self.access_log,
            log_level=self.log_level,
            read_timeout_s=self.read_timeout_s,
        )

    def serve_workers(self, config: dict[str, Any], workers: int) -> None:
        """Run ``workers`` uvicorn worker processes of :func:`app_from_environment`, handing
        them ``config`` (plus the settings) through ``$WALLETFAQ_SERVE_CONFIG``."""
        import uvicorn

        host, port, settings = self.host, self.port, self.settings
        access_log, log_level = self.access_log, self.log_level
        connections = uvicorn_options(self.read_timeout_s)
        _warn_if_exposed(host, settings)
        _prepare_log_store(settings)
        persist_dir = settings.persist_dir
        config = {
            **config,
            "log_level": log_level,
            "settings": {
                **asdict(settings),
                "persist_dir": None if persist_dir is None else str(persist_dir),
            },
        }
        previous = os.environ.get(WORKER_CONFIG_ENV)
        os.environ[WORKER_CONFIG_ENV] = json.dumps(config)  # inherited by the worker processes
        worker_environment(workers, threads_per_process(1), os.environ)  # cores shared by workers
        logger.info(
            "serving %s on http://%s:%d with %d worker processes (%d threads each)",
            persist_dir if persist_dir is not None else _redacted(str(config["store"])),
            host,
            port,
            workers,
            settings.workers,
        )
        try:
            uvicorn.run(
                f"{__name__}:app_from_environment",
                factory=True,
                workers=workers,
                host=host,
                port=port,
                access_log=access_log,
                log_level=log_level,
                **connections,
            )
        finally:
            if previous is None:
                os.environ.pop(WORKER_CONFIG_ENV, None)
            else:
                os.environ[WORKER_CONFIG_ENV] = previous


def app_from_environment() -> FastAPI:
    """The app of one worker process started by :func:`serve_index` or :func:`serve_store`
    (a uvicorn factory): it reads its configuration from ``$WALLETFAQ_SERVE_CONFIG``, loads
    the index (or builds it from the store and follows the store), answers one warm-up
    question and returns :func:`create_app` of it.

    Raises:
        WalletFAQError: the variable is missing or malformed (this factory is only for the
            processes :func:`serve_index` starts).
    """
    raw = os.environ.get(WORKER_CONFIG_ENV)
    config: Any = None
    settings_fields = None
    with contextlib.suppress(ValueError, KeyError, TypeError):
        config = loads(raw) if raw else None
        settings_fields = dict(config["settings"])
    if (
        not isinstance(config, dict)
        or settings_fields is None
        or not config.keys()
        & {
            "index",
            "store",
        }
    ):
        raise WalletFAQError(
            f"${WORKER_CONFIG_ENV} is missing or malformed; app_from_environment is the "
            "factory of the worker processes that walletfaq.service.serve_index starts"
        )
    _log_to_stderr(str(config.get("log_level", "info")))
    if settings_fields.get("persist_dir") is not None:
        settings_fields["persist_dir"] = Path(settings_fields["persist_dir"])
    settings = ServerSettings(**settings_fields)
    if "store" in config:  # the follower's thread lives as long as this process
        retriever = FAQRetriever.from_store(
            config["store"],
            model=config.get("model"),
            follow=True,
            poll_interval=config.get("poll_interval", DEFAULT_POLL_INTERVAL_S),
            listen=config.get("listen", True),
        )
    else:
        retriever = FAQRetriever.load(config["index"], model=config.get("model"))
    _warm_up(retriever)
    logger.info("worker process %d serves %r", os.getpid(), retriever)
    return create_app(retriever, settings)


def _redacted(location: str) -> str:
    """A store location for the log, its password hidden."""
    from walletfaq.store.engine import redact, store_url

    return redact(store_url(location))


def _warn_if_exposed(host: str, settings: ServerSettings) -> None:
    if not _is_loopback(host) and settings.read_token is None:
        logger.warning(
            "listening on %s without a read token: anyone who reaches it can read the FAQ "
            "(set %s to require one)",
            host,
            READ_TOKEN_ENV,
        )


def _prepare_log_store(settings: ServerSettings) -> None:
    """Open ``settings.log_store`` once, creating its tables if it is empty.

    Raises:
        StoreError: it cannot be opened or created.
    """
    if settings.log_store is None:
        return
    from walletfaq.store import open_store

    with open_store(settings.log_store, create=True) as store:
        logger.info("logging questions to %s", store.url)


def _warm_up(retriever: FAQRetriever) -> None:
    """Load the query encoder and build the safety gate, so that the first request does not
    wait for them."""
    started = time.perf_counter()
    try:
        retriever.warm_up()
    except QueryError:  # pragma: no cover - a custom normalizer may reject it
        pass
    logger.info("model warm in %.2f s", time.perf_counter() - started)


def _log_to_stderr(level: str) -> None:
    """In a worker process (which does not run the command line's setup), send walletfaq's
    log lines to stderr as the command line does."""
    package_logger = logging.getLogger("walletfaq")
    if package_logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"walletfaq[{os.getpid()}]: %(message)s"))
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.WARNING if level.lower() != "info" else logging.INFO)
    package_logger.propagate = False


__all__ = ["WORKER_CONFIG_ENV", "app_from_environment", "serve", "serve_index", "serve_store"]
