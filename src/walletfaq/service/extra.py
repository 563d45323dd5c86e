"""The ``serve`` extra: the packages the HTTP service needs beyond walletfaq's own.

Every module of :mod:`walletfaq.service` that imports the web stack calls
:func:`check_server_dependencies` before it does, so that importing it without the extra
raises one readable :class:`~walletfaq.errors.WalletFAQError` instead of an ``ImportError``.
"""

from __future__ import annotations

import importlib.util

from walletfaq.errors import WalletFAQError


def check_server_dependencies() -> None:
    """Raise a one-line :class:`WalletFAQError` when the ``serve`` extra is missing."""
    missing = [
        package
        for module, package in (
            ("fastapi", "fastapi"),
            ("pydantic", "pydantic"),
            ("uvicorn", "uvicorn"),
            ("prometheus_client", "prometheus-client"),
        )
        if importlib.util.find_spec(module) is None
    ]
    if missing:
        raise WalletFAQError(
            f"serving needs {', '.join(missing)}; install them with: pip install 'walletfaq[serve]'"
        )


__all__ = ["check_server_dependencies"]
