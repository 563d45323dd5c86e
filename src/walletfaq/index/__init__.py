"""Layer 3, index: vectors in, ranked entries out, and the saved index directory.

FAISS index specs and building (:mod:`~walletfaq.index.vector_index`), per-entry ranking and
the answer decision (:mod:`~walletfaq.index.search`: :class:`Hit`, :class:`Answer`), and the
index directory on disk (:mod:`~walletfaq.index.directory`: save/load, manifest, integrity).
Imports only :mod:`walletfaq.encoders` and :mod:`walletfaq.data` below it.
"""
