"""Progress bars that behave in a terminal and in a notebook, and quiet third-party bars.

- :func:`progress_bar`: a tqdm bar. In a notebook it is tqdm's widget when ``ipywidgets`` is
  installed, and tqdm's plain text bar otherwise (``tqdm.auto`` would then warn "IProgress not
  found" in every notebook that has no ``ipywidgets``).
- :func:`prepare_notebook_bars`: called where models are resolved, so that the libraries'
  own imports of ``tqdm.auto`` do not warn either.
- :func:`quiet_library_bars`: while a model loads, hide transformers' own bars ("Loading
  weights 199/199"): walletfaq's log lines and bars already say what is happening.

Below every layer (like :mod:`walletfaq.errors`): it imports nothing of walletfaq.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import warnings
from collections.abc import Iterable, Iterator
from typing import Any


def _silence_autonotebook_warning() -> None:
    """Import ``tqdm.autonotebook`` once with its "IProgress not found" warning silenced.

    Without ``ipywidgets`` it falls back to the plain bar either way; importing it here first
    (sentence-transformers imports it too) keeps that fallback from being announced as a
    warning in every notebook."""
    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TqdmWarning)
        import tqdm.autonotebook  # noqa: F401


def prepare_notebook_bars() -> None:
    """In an IPython kernel without ``ipywidgets``, silence tqdm's "IProgress not found"
    warning before any library (the hub client, sentence-transformers) imports
    ``tqdm.auto``; the plain bar is used either way. Free outside IPython."""
    if "IPython" in sys.modules and importlib.util.find_spec("ipywidgets") is None:
        _silence_autonotebook_warning()


def _bar_class() -> Any:
    if importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        _silence_autonotebook_warning()
        from tqdm.std import tqdm
    return tqdm


def progress_bar(iterable: Iterable[Any] | None = None, **options: Any) -> Any:
    """A tqdm bar over ``iterable`` (or a manual one: ``total=``), with tqdm's ``options``
    (``desc``, ``unit``, ``disable``, ``leave``...): the notebook widget where ``ipywidgets``
    is installed, the plain text bar everywhere else."""
    return _bar_class()(iterable, **options)


@contextlib.contextmanager
def quiet_library_bars() -> Iterator[None]:
    """Hide transformers' and the hub client's progress bars for the duration (restored
    after). Meant for model loads, where transformers is imported anyway."""
    _silence_autonotebook_warning()
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:  # pragma: no cover - sentence-transformers always brings it
        yield
        return
    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()
