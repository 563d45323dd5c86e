"""``walletfaq serve``: running it (:func:`run_serve`) and its query log options
(:func:`add_log_options`); :mod:`walletfaq.cli` registers the command and its other options."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from walletfaq.errors import WalletFAQError

if TYPE_CHECKING:
    from walletfaq.retrieval.retriever import FAQRetriever


def add_log_options(serve: argparse.ArgumentParser) -> None:
    """The query log options of ``walletfaq serve``."""
    serve.add_argument(
        "--log-store",
        metavar="URL",
        help="log questions and feedback to this store (created if empty; default: the --store "
        "served; without either, nothing is logged)",
    )
    serve.add_argument("--no-log", action="store_true", help="log no question, accept no feedback")
    serve.add_argument(
        "--log-retention-days",
        type=float,
        metavar="DAYS",
        help="delete logged questions older than this, at start and daily (default 90; 0 = keep)",
    )


def run_serve(
    args: argparse.Namespace, make_retriever: Callable[[argparse.Namespace], FAQRetriever]
) -> int:
    """Run ``walletfaq serve`` as ``args`` say (``make_retriever``: the retriever of
    ``--corpus`` or the bundled corpus); returns when the server stops.

    Raises:
        WalletFAQError: a bad option (checked before any model loads).
    """
    from pathlib import Path

    from walletfaq.service import ServerSettings, serve, serve_index, serve_store
    from walletfaq.service import threads_per_process as threads
    from walletfaq.service.protocol import check_read_timeout, listen_check

    listen_check(args.host, args.port)  # before any model loads, like every check below
    check_read_timeout(args.read_timeout)
    # the tokens come from $WALLETFAQ_READ_TOKEN / $WALLETFAQ_ADMIN_TOKEN; bad settings fail
    # before any model loads. With --index, accepted edits are saved there before answering,
    # and the directory is served again when it is replaced (hot reload, POST /v1/reload).
    if args.workers < 1:
        raise WalletFAQError(f"--workers must be at least 1 (processes), got {args.workers}")
    if args.threads is not None and args.threads < 1:
        raise WalletFAQError(f"--threads must be at least 1 (per process), got {args.threads}")
    if args.workers > 1 and not (args.index or args.store):
        raise WalletFAQError(
            "--workers above 1 needs --index DIR (every worker process loads that saved index "
            "and picks up the edits the others save there; build one with `walletfaq build "
            "--out DIR`) or --store URL (every worker process follows the store)"
        )
    settings = ServerSettings.from_env(
        workers=args.threads if args.threads is not None else threads(args.workers),
        queue_size=args.queue,
        timeout_s=args.timeout,
        persist_dir=Path(args.index) if args.index else None,
        reload_interval_s=args.reload_interval,
        threshold=args.threshold,
        fallback=args.fallback,
        clarify_margin=args.clarify_margin,
        clarify_message=args.clarify_message,
        query_log=not args.no_log,
        log_store=args.log_store,
        log_retention_days=args.log_retention_days,
    )
    log_level = "warning" if args.quiet else "info"
    common: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "settings": settings,
        "access_log": args.access_log,
        "log_level": log_level,
        "read_timeout_s": args.read_timeout,
    }
    if args.store:
        follow = {"poll_interval": args.poll_interval, "listen": not args.no_listen}
        serve_store(args.store, model=args.model, workers=args.workers, **follow, **common)
    elif args.index:
        serve_index(args.index, model=args.model, workers=args.workers, **common)
    else:
        serve(make_retriever(args), **common)
    return 0
