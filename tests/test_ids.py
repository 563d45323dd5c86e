"""The one entry id grammar (walletfaq.data.ids): what it accepts and refuses, and that the
corpus loader, in-memory corpora, live edits, lookups and contacts all give the same verdict
(the HTTP routes: tests/test_server_hostile.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from walletfaq import Corpus, CorpusError, FAQRetriever, load_corpus
from walletfaq.data.contacts import CONTACT_ID_PREFIX, directory_from_data
from walletfaq.data.corpus import load_bundled_corpus
from walletfaq.data.ids import (
    ID_MAX_CHARS,
    ID_RULE,
    InvalidIdError,
    check_id,
    id_problem,
    id_skeleton,
)

from .conftest import TINY_ENTRIES, HashEncoder

ENTRY = {"category": "c", "question": "新的问题", "answer": "答案"}

HOSTILE_IDS = {
    "a slash": "a/b",
    "a parent path": "../x",
    "a leading space": " fees",
    "a trailing space": "fees ",
    "a tab": "fe\tes",
    "a NUL": "x\x00y",
    "a newline": "x\ny",
    "a zero-width space": "fe\u200bes",
    "a byte order mark": "\ufefffees",
    "a right-to-left override": "f\u202eees",
    "a Cyrillic look-alike": "f\u0435es",
    "an accented letter": "caf\u00e9",
    "a full-width letter": "\uff46ees",
    "upper case": "Fees",
    "a dot": "fees.v2",
    "a percent sign": "a%2Fb",
    "a leading dash": "-fees",
    "a leading underscore": "_fees",
    "nothing": "",
    "one character too many": "a" * (ID_MAX_CHARS + 1),
    "a lone surrogate": "x\ud800",
}


def write_corpus_file(tmp_path: Path, ids: list[str]) -> Path:
    path = tmp_path / "faq.jsonl"
    lines = [
        json.dumps({"id": entry_id, **ENTRY, "question": f"问题{n}"})
        for n, entry_id in enumerate(ids)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- the grammar
@pytest.mark.parametrize(
    "entry_id", ["a", "0", "fees", "topup-not-received", "q_017", "hotline-e-cny", "a" * 64]
)
def test_lowercase_ascii_letters_digits_dash_and_underscore_are_an_id(entry_id: str) -> None:
    assert id_problem(entry_id) is None and check_id(entry_id) == entry_id


@pytest.mark.parametrize("entry_id", HOSTILE_IDS.values(), ids=HOSTILE_IDS.keys())
def test_an_id_outside_the_grammar_is_refused_with_the_rule_quoted(entry_id: str) -> None:
    problem = id_problem(entry_id)
    assert problem is not None and ID_RULE in problem
    with pytest.raises(InvalidIdError, match=re.escape(ID_RULE)) as caught:
        check_id(entry_id, "the id in the path")
    assert str(caught.value).startswith("the id in the path is not a valid entry id")
    assert isinstance(caught.value, CorpusError) and caught.value.field == "id"


@pytest.mark.parametrize("value", [None, 3, ["fees"]])
def test_an_id_that_is_not_a_string_is_refused(value: object) -> None:
    assert "must be a string" in str(id_problem(value))


def test_the_refusal_names_an_invisible_character_by_its_code_point() -> None:
    assert "U+200B ZERO WIDTH SPACE at position 2" in str(id_problem("fe\u200bes"))
    assert "U+0435 CYRILLIC SMALL LETTER IE" in str(id_problem("f\u0435es"))
    assert "'\\u202e'" not in str(id_problem("f\u202eees"))  # shown escaped, never raw
    assert "\u202e" not in str(id_problem("f\u202eees"))


def test_upper_case_is_explained() -> None:
    assert "(ids are lower case)" in str(id_problem("Fees"))


def test_every_bundled_and_generated_id_follows_the_grammar() -> None:
    from walletfaq.data.contacts import contact_entries, load_bundled_contacts

    bundled = load_bundled_corpus().merged(contact_entries(load_bundled_contacts()))
    assert all(id_problem(entry_id) is None for entry_id in bundled.ids)
    assert all(id_problem(entry["id"]) is None for entry in TINY_ENTRIES)


# ----------------------------------------------------------------------------- the loader
@pytest.mark.parametrize("entry_id", HOSTILE_IDS.values(), ids=HOSTILE_IDS.keys())
def test_the_loader_refuses_an_invalid_id_naming_file_line_field_and_rule(
    tmp_path: Path, entry_id: str
) -> None:
    path = write_corpus_file(tmp_path, ["fine", entry_id])
    with pytest.raises(CorpusError, match=re.escape(ID_RULE)) as caught:
        load_corpus(path)
    assert caught.value.line == 2 and caught.value.field == "id"
    assert f"{path}:2 field 'id'" in str(caught.value)


def test_the_loader_never_trims_an_id_into_an_existing_one(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="U\\+0020 SPACE at position 4"):
        load_corpus(write_corpus_file(tmp_path, ["fees", "fees "]))


def test_an_in_memory_corpus_applies_the_same_rule() -> None:
    with pytest.raises(CorpusError, match=re.escape(ID_RULE)):
        Corpus.from_entries([{"id": "a/b", **ENTRY}])


def test_looking_up_an_id_outside_the_grammar_names_the_rule(tiny_corpus: Corpus) -> None:
    with pytest.raises(InvalidIdError, match=re.escape(ID_RULE)):
        tiny_corpus[" fees "]
    with pytest.raises(KeyError):
        tiny_corpus["absent"]
    assert " fees " not in tiny_corpus


# ----------------------------------------------------------------------------- live edits
@pytest.fixture
def retriever(tiny_corpus: Corpus) -> FAQRetriever:
    return FAQRetriever.build(tiny_corpus, model=HashEncoder())


@pytest.mark.parametrize("entry_id", ["a/b", "fees ", "f\u0435es", "x\x00y"])
def test_add_update_remove_and_entry_refuse_an_invalid_id(
    retriever: FAQRetriever, entry_id: str
) -> None:
    for edit in (
        lambda: retriever.add([{"id": entry_id, **ENTRY}]),
        lambda: retriever.update({"id": entry_id, **ENTRY}),
        lambda: retriever.remove([entry_id]),
        lambda: retriever.entry(entry_id),
    ):
        with pytest.raises(CorpusError, match=re.escape(ID_RULE)):
            edit()
    assert retriever.corpus.ids == tuple(entry["id"] for entry in TINY_ENTRIES)
    assert retriever.version == 1


def test_update_with_a_padded_id_does_not_replace_the_entry(retriever: FAQRetriever) -> None:
    before = retriever.entry("fees")
    with pytest.raises(CorpusError, match=re.escape(ID_RULE)):
        retriever.update({"id": " fees ", **ENTRY})
    assert retriever.entry("fees") == before


# ----------------------------------------------------------------------------- contacts
def contacts_with(contact_id: str) -> object:
    return directory_from_data(
        {
            "version": 1,
            "contacts": [
                {"id": contact_id, "name": "甲钱包", "official_url": "https://example.com"}
            ],
        }
    )


@pytest.mark.parametrize("contact_id", ["Ali Pay", "", "a" * (ID_MAX_CHARS - 7), None])
def test_a_contact_id_and_its_hotline_entry_id_follow_the_grammar(contact_id: object) -> None:
    with pytest.raises(CorpusError, match=re.escape(ID_RULE)) as caught:
        contacts_with(contact_id)  # type: ignore[arg-type]
    assert caught.value.field == "contacts[0].id" and "hotline-<id>" in str(caught.value)


def test_the_longest_contact_id_makes_the_longest_entry_id() -> None:
    (contact,) = contacts_with("a" * (ID_MAX_CHARS - len(CONTACT_ID_PREFIX)))  # type: ignore[misc]
    assert len(contact.entry_id) == ID_MAX_CHARS


# ----------------------------------------------------------------------------- the same verdict
GRAMMAR = st.from_regex(rf"[a-z0-9][a-z0-9_-]{{0,{ID_MAX_CHARS - 1}}}", fullmatch=True)
NEAR_MISSES = st.text(
    alphabet=st.sampled_from(
        [*"az09-_", *"AZ/. \t\n\x00%?#\\:", "\u200b", "\u202e", "\ufeff", "\u0435", "\u00e9"]
    ),
    max_size=ID_MAX_CHARS + 3,
)
AROUND_THE_LENGTH = st.integers(ID_MAX_CHARS - 2, ID_MAX_CHARS + 2).map(lambda n: "a" * n)
IDS = st.one_of(GRAMMAR, NEAR_MISSES, AROUND_THE_LENGTH, st.text(max_size=ID_MAX_CHARS + 3))


def refused_for_the_rule(action: object) -> bool:
    """Whether ``action()`` was refused for its id (a CorpusError quoting the rule); any
    other outcome, success or another refusal (a duplicate id, say), is ``False``."""
    try:
        action()  # type: ignore[operator]
    except KeyError:
        return False
    except CorpusError as exc:
        return ID_RULE in str(exc)
    return False


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entry_id=IDS)
def test_the_loader_edits_lookups_and_contacts_agree_with_the_grammar(entry_id: str) -> None:
    invalid = id_problem(entry_id) is not None
    event("outside the grammar" if invalid else "an id")
    retriever = FAQRetriever.build(Corpus.from_entries(TINY_ENTRIES), model=HashEncoder())
    record = {"id": entry_id, **ENTRY}
    verdicts = {
        "from_entries": refused_for_the_rule(lambda: Corpus.from_entries([record])),
        "add": refused_for_the_rule(lambda: retriever.add([record])),
        "update": refused_for_the_rule(lambda: retriever.update(record)),
        "remove": refused_for_the_rule(lambda: retriever.remove(entry_id)),
        "entry": refused_for_the_rule(lambda: retriever.entry(entry_id)),
    }
    assert verdicts == dict.fromkeys(verdicts, invalid)
    contact_invalid = invalid or id_problem(CONTACT_ID_PREFIX + entry_id) is not None
    assert refused_for_the_rule(lambda: contacts_with(entry_id)) == contact_invalid


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(entry_id=IDS)
def test_the_file_loader_agrees_with_the_grammar(tmp_path: Path, entry_id: str) -> None:
    path = write_corpus_file(tmp_path, [entry_id])
    assert refused_for_the_rule(lambda: load_corpus(path)) == (id_problem(entry_id) is not None)


# ----------------------------------------------------------------------------- look-alikes
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("top-up", "top_up"),
        ("l0gin", "login"),
        ("fees-1", "fees-l"),
        ("modern", "modem"),
        ("f\u0435es", "fees"),
        ("FEES", "fees"),
        ("\uff46ees", "fees"),
        ("fe\u200bes", "fees"),
    ],
)
def test_look_alike_ids_share_a_skeleton(first: str, second: str) -> None:
    assert id_skeleton(first) == id_skeleton(second)


@pytest.mark.parametrize(("first", "second"), [("fees", "feed"), ("top-up", "topup"), ("a", "b")])
def test_ids_that_read_differently_have_different_skeletons(first: str, second: str) -> None:
    assert id_skeleton(first) != id_skeleton(second)
