"""Lexical retrieval: BM25 (bm25s) over jieba tokens, with a domain user dictionary.

Dense embeddings blur exact terms: a product name (花呗, 零钱通), a hotline number or an
error word matters more than its neighbourhood in embedding space. :class:`LexicalIndex`
scores every indexed text by BM25 over jieba tokens, so :class:`~walletfaq.HybridRetriever`
can fuse it with dense scores.

The tokenizer is a private ``jieba.Tokenizer`` (no global dictionary is touched) loaded with
jieba's dictionary plus a domain lexicon, by default the one shipped with the corpus
(``corpus/lexicon.txt``: one term per line, optionally followed by a frequency and a
part-of-speech tag, as jieba's user dictionaries). Needs the ``hybrid`` extra
(``pip install "walletfaq[hybrid]"``).
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from walletfaq.errors import CorpusError, WalletFAQError

logger = logging.getLogger(__name__)

LEXICON_NAME = "lexicon.txt"


def bundled_lexicon_path() -> Path:
    """Path of the domain lexicon shipped with the bundled corpus (``corpus/lexicon.txt``)."""
    from walletfaq.data.corpus import bundled_data_dir

    return bundled_data_dir() / LEXICON_NAME


def _require(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise WalletFAQError(
            f"lexical retrieval needs {module!r}, which is not installed; "
            'pip install "walletfaq[hybrid]"'
        ) from None


def read_lexicon(path: str | Path) -> tuple[str, ...]:
    """The terms of a lexicon file: UTF-8, one term per line (``term [freq] [tag]``); blank
    lines and lines starting with ``#`` are skipped.

    Raises:
        CorpusError: the file is missing, not UTF-8, or a line's frequency is not a
            positive integer (the message gives the line).
    """
    from walletfaq.data.corpus import read_text_file

    source = Path(path)
    text = read_text_file(source, what="lexicon")
    terms = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) > 1 and not (parts[1].isascii() and parts[1].isdigit() and int(parts[1]) > 0):
            raise CorpusError(
                f"the frequency after {parts[0]!r} must be a positive integer, got "
                f"{parts[1]!r}; write 'term', 'term freq' or 'term freq tag'",
                path=source,
                line=number,
            )
        terms.append(parts[0])
    return tuple(dict.fromkeys(terms))


class Tokenizer:
    """jieba segmentation for search: lower-cased, full-width folded (NFKC), punctuation
    and whitespace dropped; a private jieba dictionary extended with ``terms``.

    Args:
        terms: domain words jieba must keep whole (e.g. ``"花呗"``, ``"零钱通"``).
    """

    def __init__(self, terms: Sequence[str] = ()) -> None:
        jieba = _require("jieba")
        self.terms = tuple(terms)
        self._jieba = jieba.Tokenizer()
        self._lock = threading.Lock()
        self._ready = False

    def _initialise(self) -> None:
        with self._lock:
            if self._ready:
                return
            jieba_logger = logging.getLogger("jieba")
            level = jieba_logger.level
            jieba_logger.setLevel(logging.WARNING)  # "Building prefix dict..." on stderr
            try:
                self._jieba.initialize()
            finally:
                jieba_logger.setLevel(level)
            for term in self.terms:
                # a high frequency keeps the term whole even where jieba prefers a split
                self._jieba.add_word(term.lower(), freq=max(self._jieba.suggest_freq(term), 1000))
            self._ready = True

    def __call__(self, text: str) -> list[str]:
        """The search tokens of ``text`` (possibly empty)."""
        if not self._ready:
            self._initialise()
        folded = unicodedata.normalize("NFKC", text).lower()
        return [
            token
            for token in self._jieba.lcut_for_search(folded)
            if any(ch.isalnum() for ch in token)
        ]


class LexicalIndex:
    """BM25 scores of a question against every indexed text (one row per text, the same
    rows as the dense index).

    Args:
        texts: the indexed texts, in row order.
        tokenizer: how texts and questions are split into words.
        k1, b: BM25 parameters (bm25s' Lucene variant).
    """

    def __init__(
        self, texts: Sequence[str], tokenizer: Tokenizer, *, k1: float = 1.2, b: float = 0.75
    ) -> None:
        bm25s = _require("bm25s")
        self.tokenizer = tokenizer
        self.k1 = k1
        self.b = b
        self.size = len(texts)
        tokens = [tokenizer(text) or ["\u2205"] for text in texts]  # no empty document
        self._bm25 = bm25s.BM25(k1=k1, b=b)
        self._bm25.index(tokens, show_progress=False)
        self._vocabulary = set(self._bm25.vocab_dict)

    def __repr__(self) -> str:
        return f"LexicalIndex(rows={self.size}, vocabulary={len(self._vocabulary)})"

    def scores(self, question: str) -> np.ndarray:
        """BM25 score of ``question`` against every row (zeros when no word is shared)."""
        words = [w for w in self.tokenizer(question) if w in self._vocabulary]
        if not words:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(words), dtype=np.float32)
