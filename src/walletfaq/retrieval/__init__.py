"""Layer 4, retrieval: what an app holds and asks.

:class:`~walletfaq.retrieval.retriever.FAQRetriever` (build, ask, answer, live edits, save and
load), :class:`~walletfaq.retrieval.hybrid.HybridRetriever` (several encoders and BM25 fused),
BM25 over jieba tokens (:mod:`~walletfaq.retrieval.lexical`) and the safety gate of
``answer()`` (:mod:`~walletfaq.retrieval.safety`), replicas of the store of record
(:mod:`~walletfaq.retrieval.replica`) and the query log (:mod:`~walletfaq.retrieval.traffic`).
Imports only the layers below it: :mod:`walletfaq.index`, :mod:`walletfaq.store`,
:mod:`walletfaq.encoders`, :mod:`walletfaq.data`.
"""
