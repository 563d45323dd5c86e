"""The bundled evaluation queries are a fair yardstick: independent of the corpus' wording."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from walletfaq.data.contacts import contact_entries, load_bundled_contacts
from walletfaq.data.corpus import load_bundled_corpus

from .test_corpus import ARTICLE_QUESTIONS

EVAL = Path(__file__).resolve().parents[1] / "corpus" / "eval" / "queries.jsonl"


def queries() -> list[dict]:
    return [json.loads(line) for line in EVAL.read_text("utf-8").splitlines() if line.strip()]


def full_corpus():
    return load_bundled_corpus().merged(contact_entries(load_bundled_contacts()))


def test_eval_set_has_at_least_400_labelled_queries_with_known_gold_ids() -> None:
    items = queries()
    ids = set(full_corpus().ids)
    assert len(items) >= 400
    assert [q for q in items if not set(q["gold"]) <= ids] == []
    assert len({q["query"] for q in items}) == len(items)


def test_no_eval_query_repeats_a_corpus_question_or_alt_question() -> None:
    texts = {t for entry in full_corpus() for t in entry.questions()}
    assert [q["query"] for q in queries() if q["query"] in texts] == []


def test_every_category_and_article_topic_is_covered() -> None:
    corpus = full_corpus()
    items = queries()
    covered = {corpus[q["gold"][0]].category for q in items if q["gold"]}
    assert covered == set(corpus.categories)
    per_id = Counter(g for q in items for g in q["gold"])
    assert {i: per_id[i] for i in ARTICLE_QUESTIONS if per_id[i] < 10} == {}


def test_at_least_40_out_of_domain_queries_and_the_user_styles() -> None:
    items = queries()
    assert sum(not q["gold"] for q in items) >= 40
    styles = Counter(q["style"] for q in items)
    for style in ("colloquial", "keyword", "typo", "mixed", "traditional", "english", "rambling"):
        assert styles[style] >= 30, style
