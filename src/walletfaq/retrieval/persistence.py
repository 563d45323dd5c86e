"""A retriever's state in a saved index directory: the manifest :meth:`FAQRetriever.save
<walletfaq.FAQRetriever.save>` writes, and what :meth:`FAQRetriever.load
<walletfaq.FAQRetriever.load>` reads back and verifies (model fingerprint, corpus hash) before
anything answers from it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import walletfaq.index.directory as index_directory
import walletfaq.index.vector_index as vector_index
from walletfaq.data.contacts import ContactDirectory
from walletfaq.data.corpus import Corpus, load_corpus
from walletfaq.encoders.protocol import Encoder
from walletfaq.errors import IndexMismatchError
from walletfaq.index.directory import Destination
from walletfaq.index.vector_index import IndexSpec
from walletfaq.retrieval.safety import safety_arguments
from walletfaq.retrieval.state import RetrieverState


def save_state(
    directory: Destination,
    *,
    state: RetrieverState,
    encoder: Encoder,
    index_spec: IndexSpec,
    index_answers: bool,
    question_encoding: str,
    settings: Mapping[str, Any],
    contacts: ContactDirectory | None,
    replace_anything: bool,
    version: int,
) -> Path:
    """Write ``state`` and its manifest (``settings``: the answering settings) to
    ``directory`` (a path, or :class:`~walletfaq.index.directory.IfUnchanged`) atomically
    (:func:`walletfaq.index.directory.save`), as index version ``version``; returns its path."""
    from walletfaq._version import __version__
    from walletfaq.encoders.restore import tuned_parts

    tuned = tuned_parts(encoder)
    manifest = index_directory.Manifest(
        model=encoder.name,
        model_fingerprint=encoder.fingerprint,
        dim=int(state.index.d),
        corpus_hash=state.corpus.content_hash(),
        entry_count=len(state.corpus),
        vector_count=int(state.index.ntotal),
        index=index_spec.to_dict(),
        index_answers=index_answers,
        question_encoding=question_encoding,
        walletfaq_version=__version__,
        settings=dict(settings),
        tuning=tuned.record,
    )
    return index_directory.save(
        directory,
        manifest=manifest,
        corpus=state.corpus,
        row_entry=state.row_entry,
        index=state.index,
        contacts=contacts,
        adapter=tuned.adapter,
        finetune=tuned.finetune,
        replace_anything=replace_anything,
        version=version,
    )


def load_arguments(
    directory: str | Path,
    *,
    model: str | Path | Encoder | None,
    corpus: str | Path | Corpus | None,
    resolve: Callable[[str | Path | Encoder | None], Encoder],
) -> dict[str, Any]:
    """The :class:`~walletfaq.FAQRetriever` constructor arguments of a saved index, verified
    against ``model`` (resolved with ``resolve``) and ``corpus`` as
    :meth:`FAQRetriever.load <walletfaq.FAQRetriever.load>` documents."""
    from walletfaq.encoders.restore import base_fingerprint, matching_engine, restore

    stored = index_directory.load(directory)
    manifest = stored.manifest
    base = matching_engine(
        resolve(model if model is not None else manifest.model),
        base_fingerprint(manifest.tuning) or manifest.model_fingerprint,
    )
    encoder = restore(
        base, manifest.tuning, adapter=stored.adapter, finetune=stored.finetune, where=directory
    )
    if encoder.fingerprint != manifest.model_fingerprint:
        raise IndexMismatchError(
            f"{directory}: built with model {manifest.model!r} (fingerprint "
            f"{manifest.model_fingerprint[:12]}), but the model given is {encoder.name!r} "
            f"(fingerprint {encoder.fingerprint[:12]}); load it with the model it was built "
            "with, or rebuild the index"
        )
    if corpus is not None:
        expected = corpus if isinstance(corpus, Corpus) else load_corpus(corpus)
        if expected.content_hash() != manifest.corpus_hash:
            raise IndexMismatchError(
                f"{directory}: built from a different corpus (hash "
                f"{manifest.corpus_hash[:12]}, yours {expected.content_hash()[:12]}: entries "
                "were added, removed or edited); rebuild the index"
            )
    spec = IndexSpec(**manifest.index)
    if spec.kind == "hnsw":
        vector_index.set_ef_search(stored.index, spec.ef_search)
    return {
        "corpus": stored.corpus,
        "encoder": encoder,
        "index": stored.index,
        "index_spec": spec,
        "index_answers": manifest.index_answers,
        "question_encoding": manifest.question_encoding,
        "contacts": stored.contacts,
        "threshold": manifest.settings.get("threshold"),
        "fallback": manifest.settings.get("fallback"),
        # an index saved before clarify existed: None, the model's default margin
        "clarify_margin": manifest.settings.get("clarify_margin"),
        "clarify_message": manifest.settings.get("clarify_message"),
        "version": stored.version,
        **safety_arguments(manifest.settings, directory),
    }
