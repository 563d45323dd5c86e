"""Gaps from the store of record (issue 19, parts 3 and 5): the store's query log read as gap
mining's input, each cluster linked to a proposal in the store (recorded once, found again on
every later run), and ``walletfaq gaps`` / ``gaps accept`` / ``gaps reject`` / ``gaps list``
and the gap clusters of ``walletfaq report`` on the command line.

The keyword encoder of ``tests/gaps_support.py`` stands in for a model (the clusters are
known in advance); the command line reaches it as ``--model keyword-test``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import walletfaq
from tests.conftest import TINY_ENTRIES
from tests.gaps_support import BACKGROUND, FAMILY_CARD, INVOICES, LOGIN_WORDS, KeywordEncoder
from walletfaq import Corpus, FAQRetriever, GapError
from walletfaq.cli import main
from walletfaq.data.normalize import clean_text
from walletfaq.quality.gaps import GapCluster, NewEntry
from walletfaq.quality.gaps.store_bridge import (
    StoreGapReport,
    gaps_from_store,
    proposal_key,
    stored_key,
    traffic_questions,
)
from walletfaq.store import NewProposal, Proposal, QueryHit, QueryRecord, Store, open_store

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
HANDOFF_HITS = (QueryHit("login", 0.31), QueryHit("fees", 0.2))
CLUSTER_KEYS = {"id", "size", "questions", "nearest_entry", "score", "proposal"}


def tiny_corpus() -> Corpus:
    return Corpus.from_entries(TINY_ENTRIES, source="tiny")


def handoffs(questions: Sequence[str], start: int, prefix: str = "h") -> list[QueryRecord]:
    """Handed-off queries, one minute apart from ``T0 + start`` minutes."""
    return [
        QueryRecord(
            f"{prefix}{start + i}",
            question,
            "handoff",
            HANDOFF_HITS,
            12.0,
            created_at=T0 + timedelta(minutes=start + i),
        )
        for i, question in enumerate(questions)
    ]


def plant_traffic(store: Store) -> None:
    """Three topics among unrelated questions, all handed off; two answers with feedback and
    one refused (empty) question."""
    store.log_queries(
        [
            *handoffs(FAMILY_CARD, 0),
            *handoffs(LOGIN_WORDS, 100),
            *handoffs(INVOICES, 200),
            *handoffs(BACKGROUND, 300),
            QueryRecord(
                "a1", "钱充了没到", "answer", (QueryHit("topup", 0.97), QueryHit("refund", 0.4)),
                8.0, created_at=T0 + timedelta(minutes=400),
            ),
            QueryRecord(
                "a2", "退款怎么弄", "answer", (QueryHit("refund", 0.93),), 9.0,
                created_at=T0 + timedelta(minutes=401),
            ),
            QueryRecord("x1", "", "refuse", (), 1.0, created_at=T0 + timedelta(minutes=402)),
        ]
    )  # fmt: skip
    store.add_feedback("a1", True)
    store.add_feedback("a2", False, entry_id="refund")


@pytest.fixture
def planted(store_location: str) -> Iterator[Store]:
    """A store (SQLite, then PostgreSQL) holding the tiny corpus and the planted traffic."""
    store = open_store(store_location, create=True)
    store.init(tiny_corpus(), author="alice")
    plant_traffic(store)
    yield store
    store.close()


def keyword_retriever(store: Store) -> FAQRetriever:
    retriever = FAQRetriever.from_store(store, model=KeywordEncoder())
    retriever.threshold = 0.8
    return retriever


def mine(store: Store, **options: object) -> StoreGapReport:
    return gaps_from_store(store, retriever=keyword_retriever(store), **options)  # type: ignore[arg-type]


def cluster_of(report: StoreGapReport, question: str) -> GapCluster:
    (cluster,) = [c for c in report.clusters if question in c.questions]
    return cluster


def proposal_for(report: StoreGapReport, question: str) -> Proposal:
    """The store's proposal of the cluster that holds ``question`` (it must have one)."""
    proposal = report.proposal_of(cluster_of(report, question))
    assert proposal is not None
    return proposal


# ----------------------------------------------------------------------------- the log


def test_the_log_is_read_with_its_decision_top_hit_margin_and_feedback(planted: Store) -> None:
    questions, empty_refused = traffic_questions(planted)
    by_id = {q.request_id: q for q in questions}
    answered = by_id["a1"]
    assert (answered.decision, answered.top_entry, answered.helpful) == ("answer", "topup", True)
    assert answered.top_score == pytest.approx(0.97)
    assert answered.margin == pytest.approx(0.57)
    assert by_id["a2"].helpful is False and by_id["a2"].margin is None
    assert by_id["h0"].asked_at == T0 and by_id["h0"].question == FAMILY_CARD[0]
    assert empty_refused == 1 and "x1" not in by_id


def test_since_reads_only_the_queries_asked_at_or_after_it(planted: Store) -> None:
    questions, _ = traffic_questions(planted, since=T0 + timedelta(minutes=200))
    assert {q.question for q in questions} >= set(INVOICES)
    assert not {q.question for q in questions} & set(FAMILY_CARD + LOGIN_WORDS)
    report = mine(planted, since=T0 + timedelta(minutes=100))
    assert all(FAMILY_CARD[0] not in c.questions for c in report.clusters)


# ----------------------------------------------------------------------------- proposals


def test_each_planted_topic_is_a_cluster_with_one_proposal_recorded(planted: Store) -> None:
    report = mine(planted)
    assert sorted(sorted(c.questions) for c in report.clusters) == sorted(
        sorted(topic) for topic in (FAMILY_CARD, LOGIN_WORDS, INVOICES)
    )
    assert report.recorded == 3 and len(planted.proposals("open")) == 3
    assert report.refused == 1 and report.considered == len(traffic_questions(planted)[0]) + 1
    family = proposal_for(report, FAMILY_CARD[0])
    assert family.kind == "new_entry" and family.target is None
    assert isinstance(cluster_of(report, FAMILY_CARD[0]).proposal, NewEntry)
    assert family.suggested_question == cluster_of(report, FAMILY_CARD[0]).questions[0]
    assert set(family.questions) == set(FAMILY_CARD)  # the suggested question among them
    login = proposal_for(report, LOGIN_WORDS[0])
    assert (login.kind, login.target) == ("add_alts", "login")
    assert set(login.questions) == set(LOGIN_WORDS)


def test_mining_the_same_log_again_links_the_same_proposals_and_records_none(
    planted: Store,
) -> None:
    first = mine(planted)
    again = mine(planted)
    assert again.recorded == 0 and len(planted.proposals()) == 3
    assert [c.id for c in again.clusters] == [c.id for c in first.clusters]
    assert {c: p.id for c, p in again.proposals.items()} == {
        c: p.id for c, p in first.proposals.items()
    }


def test_a_repeat_changes_the_cluster_id_but_not_its_proposal(planted: Store) -> None:
    before = cluster_of(mine(planted), FAMILY_CARD[0])
    planted.log_queries(handoffs(FAMILY_CARD[:1], 500))
    report = mine(planted)
    after = cluster_of(report, FAMILY_CARD[0])
    assert after.id != before.id and after.size == before.size + 1
    assert report.recorded == 0 and len(planted.proposals()) == 3


def test_a_proposal_of_masked_questions_is_found_again(store_location: str) -> None:
    phone = "我手机13812345678能开亲属卡吗"
    with open_store(store_location, create=True) as store:
        store.init(tiny_corpus(), author="alice")
        topics = (*FAMILY_CARD[:4], phone, *LOGIN_WORDS, *INVOICES, *BACKGROUND)
        store.log_queries(handoffs(topics, 0))
        first = mine(store)
        family = proposal_for(first, FAMILY_CARD[0])
        assert "我手机[手机号]能开亲属卡吗" in family.questions
        assert not any("13812345678" in q for p in store.proposals() for q in p.questions)
        again = mine(store)
        assert again.recorded == 0 and proposal_for(again, FAMILY_CARD[0]).id == family.id


PIECES = st.text(alphabet=st.sampled_from("亲属卡開通发票 \u3000\t1３8@a.b-，。?\u200b"))
DETAILS = st.sampled_from(
    ["", "13812345678", "１３８ １２３４ ５６７８", "a.b@qq.com", "6222021234567890123"]
)
TEXTS = st.builds(lambda a, detail, b: a + detail + b, PIECES, DETAILS, PIECES)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(questions=st.lists(TEXTS, min_size=1, max_size=5), new_entry=st.booleans())
def test_a_proposals_key_is_the_key_of_what_the_store_records(
    tmp_path: Path, questions: list[str], new_entry: bool
) -> None:
    """The content a cluster's proposal is found by is computed as the store writes it
    (cleaned, masked, de-duplicated), whatever the texts."""
    assume(all(clean_text(q) for q in questions))
    if new_entry:
        new = NewProposal("new_entry", tuple(questions), suggested_question=questions[0])
    else:
        new = NewProposal("add_alts", tuple(questions), target="login")
    path = tmp_path / "keys.db"
    with open_store(str(path), create=not path.exists()) as store:
        (recorded,) = store.add_proposals([new])
    assert proposal_key(new) == stored_key(recorded)


def test_a_decided_proposal_is_shown_with_its_status_and_never_proposed_again(
    planted: Store,
) -> None:
    family = proposal_for(mine(planted), FAMILY_CARD[0])
    planted.decide_proposal(family.id, False, author="bob")
    report = mine(planted)
    shown = proposal_for(report, FAMILY_CARD[0])
    assert (shown.id, shown.status) == (family.id, "rejected")
    assert report.recorded == 0 and len(planted.proposals("open")) == 2


def test_without_recording_nothing_is_written_and_known_proposals_are_still_shown(
    planted: Store,
) -> None:
    dry = mine(planted, record=False)
    assert dry.recorded == 0 and dry.proposals == {} and planted.proposals() == ()
    recorded = mine(planted)
    shown = mine(planted, record=False)
    assert {c: p.id for c, p in shown.proposals.items()} == {
        c: p.id for c, p in recorded.proposals.items()
    }


def test_after_accepting_add_alts_the_cluster_has_nothing_left_to_propose(
    planted: Store,
) -> None:
    login = proposal_for(mine(planted), LOGIN_WORDS[0])
    planted.decide_proposal(login.id, True, author="bob")
    again = mine(planted)  # mined over the new revision: login has the questions now
    cluster = cluster_of(again, LOGIN_WORDS[0])
    assert cluster.proposal.questions == () and again.proposal_of(cluster) is None
    assert again.to_dict()["clusters"][again.clusters.index(cluster)]["proposal"]["id"] is None
    assert again.recorded == 0


def test_the_json_has_the_issue_shape_with_the_proposal_id_inside_proposal(
    planted: Store,
) -> None:
    report = mine(planted)
    printed = json.loads(json.dumps(report.to_dict()))
    assert set(printed) == {"clusters"}
    ids = {p.id for p in planted.proposals()}
    for item, cluster in zip(printed["clusters"], report.clusters, strict=True):
        assert set(item) == CLUSTER_KEYS and item["size"] == len(item["questions"])
        assert item["questions"] == list(cluster.questions)
        proposal = item["proposal"]
        extra = {"entry_id"} if proposal["kind"] == "add_alts" else {"suggested_question"}
        assert set(proposal) == {"kind", "questions", "id", "status"} | extra
        assert proposal["id"] in ids and proposal["status"] == "open"


def test_the_frame_names_each_clusters_proposal(planted: Store) -> None:
    report = mine(planted)
    frame = report.to_frame()
    assert list(frame.columns[2:5]) == ["kind", "proposal_id", "proposal_status"]
    assert list(frame["proposal_id"]) == [report.proposal_of(c).id for c in report.clusters]  # type: ignore[union-attr]


def test_an_empty_log_is_an_empty_report_without_a_model(store_location: str) -> None:
    with open_store(store_location, create=True) as store:
        store.init(tiny_corpus(), author="alice")
        report = gaps_from_store(store, model="no-such-model-is-loaded")
    assert report.to_dict() == {"clusters": []} and report.considered == 0


def test_bad_arguments_are_refused_by_name(planted: Store) -> None:
    with pytest.raises(GapError, match="retriever or a model"):
        gaps_from_store(planted, retriever=keyword_retriever(planted), model="e5-small")
    with pytest.raises(GapError, match="until needs a since"):
        gaps_from_store(planted, until="1d")
    with pytest.raises(GapError, match="read from the store's log"):
        gaps_from_store(planted, retriever=keyword_retriever(planted), questions=[])


def test_gaps_is_a_public_name_of_the_package() -> None:
    assert walletfaq.gaps is gaps_from_store is walletfaq.gaps_from_store


# ----------------------------------------------------------------------------- command line


@pytest.fixture
def keyword_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--model keyword-test`` is the keyword encoder, with a threshold of 0.8."""
    import walletfaq.retrieval.answer_settings as answer_settings
    import walletfaq.retrieval.retriever as retriever_module

    encoder = KeywordEncoder()
    resolve, threshold = retriever_module.resolve_encoder, answer_settings.default_threshold
    monkeypatch.setattr(
        retriever_module,
        "resolve_encoder",
        lambda model=None: encoder if model == "keyword-test" else resolve(model),
    )
    monkeypatch.setattr(
        answer_settings,
        "default_threshold",
        lambda name: 0.8 if name == encoder.name else threshold(name),
    )


@pytest.fixture
def store_path(tmp_path: Path, keyword_model: None) -> str:
    path = str(tmp_path / "faq.db")
    with open_store(path, create=True) as store:
        store.init(tiny_corpus(), author="alice")
        plant_traffic(store)
    return path


def gaps_json(store_path: str, capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["gaps", "--store", store_path, "--json", "--model", "keyword-test"]) == 0
    return json.loads(capsys.readouterr().out)


def proposal_id(printed: dict, question: str) -> str:
    (cluster,) = [c for c in printed["clusters"] if question in c["questions"]]
    return str(cluster["proposal"]["id"])


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    return captured.err


def test_gaps_json_prints_the_issue_shape_and_the_stored_proposal_ids(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    printed = gaps_json(store_path, capsys)
    assert set(printed) == {"clusters"} and len(printed["clusters"]) == 3
    assert all(set(c) == CLUSTER_KEYS for c in printed["clusters"])
    with open_store(store_path) as store:
        assert {p.id for p in store.proposals("open")} == {
            c["proposal"]["id"] for c in printed["clusters"]
        }
    assert gaps_json(store_path, capsys) == printed  # a second run: same ids, nothing new


def test_gaps_prints_each_cluster_with_its_proposal_and_how_to_decide(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gaps", "--store", store_path, "--model", "keyword-test"]) == 0
    out = capsys.readouterr().out
    assert "3 gap clusters" in out and "3 new proposals recorded" in out
    assert "(open), new_entry: 5 questions" in out and "alt questions for login" in out
    suggested = [line.split("suggested question: ")[1] for line in out.splitlines() if
                 "suggested question:" in line]  # fmt: skip
    assert len(suggested) == 2 and {*suggested} & {*FAMILY_CARD} and {*suggested} & {*INVOICES}
    assert "walletfaq gaps accept ID --store URL" in out


def test_gaps_since_mines_only_recent_queries(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["gaps", "--store", store_path, "--since", "2026-03-01T03:00", "--json"]
    assert main([*argv, "--model", "keyword-test"]) == 0
    asked = {q for c in json.loads(capsys.readouterr().out)["clusters"] for q in c["questions"]}
    assert set(INVOICES) <= asked and not asked & {*FAMILY_CARD, *LOGIN_WORDS}  # before 03:00


def test_accept_add_alts_writes_a_revision_with_the_alt_questions(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    login = proposal_id(gaps_json(store_path, capsys), LOGIN_WORDS[0])
    assert main(["gaps", "accept", login, "--store", store_path, "--author", "bob"]) == 0
    assert "revision 2 adds alt questions to entry login" in capsys.readouterr().out
    with open_store(store_path) as store:
        entry = store.entry("login")
        proposal = store.proposal(login)
        (revision,) = [r for r in store.log() if r.number == 2]
    assert set(LOGIN_WORDS) <= set(entry.alt_questions)
    assert entry.alt_questions[:2] == tuple(TINY_ENTRIES[0]["alt_questions"])
    assert (proposal.status, proposal.decided_by, proposal.revision) == ("accepted", "bob", 2)
    assert (revision.kind, revision.author) == ("proposal", "bob")


def test_accept_new_entry_without_an_answer_is_exit_2_and_writes_nothing(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    family = proposal_id(gaps_json(store_path, capsys), FAMILY_CARD[0])
    assert main(["gaps", "accept", family, "--store", store_path]) == 2
    error = one_line_error(capsys)
    assert "--answer TEXT" in error and "written by a person" in error and family in error
    with open_store(store_path) as store:
        assert store.head() == 1 and store.proposal(family).status == "open"


def test_accept_new_entry_with_an_answer_creates_the_entry(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    family = proposal_id(gaps_json(store_path, capsys), FAMILY_CARD[0])
    argv = ["gaps", "accept", family, "--store", store_path, "--answer", "在钱包设置里开通亲属卡。"]
    assert main([*argv, "--category", "account"]) == 0
    out = capsys.readouterr().out
    with open_store(store_path) as store:
        (added,) = store.diff(1, 2).added
        proposal = store.proposal(family)
    entry = added.after
    assert entry is not None and f"revision 2 adds entry {entry.id}" in out
    assert (entry.category, entry.answer) == ("account", "在钱包设置里开通亲属卡。")
    assert entry.question == proposal.suggested_question
    assert set(entry.alt_questions) == set(FAMILY_CARD) - {entry.question}


def test_accept_with_stage_stages_the_change_for_the_next_publish(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    login = proposal_id(gaps_json(store_path, capsys), LOGIN_WORDS[0])
    assert main(["gaps", "accept", login, "--store", store_path, "--stage"]) == 0
    assert "entry login staged for the next publish" in capsys.readouterr().out
    with open_store(store_path) as store:
        (staged,) = store.staged()
        assert store.head() == 1 and store.proposal(login).status == "accepted"
    assert (staged.entry_id, staged.proposal_id) == ("login", login)


def test_answer_and_category_are_refused_for_add_alts(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    login = proposal_id(gaps_json(store_path, capsys), LOGIN_WORDS[0])
    assert main(["gaps", "accept", login, "--store", store_path, "--answer", "x"]) == 2
    assert "only for a new_entry proposal" in one_line_error(capsys)


def test_reject_is_final(store_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    family = proposal_id(gaps_json(store_path, capsys), FAMILY_CARD[0])
    assert main(["gaps", "reject", family, "--store", store_path, "--author", "carol"]) == 0
    assert f"proposal {family} (new_entry) rejected by carol" in capsys.readouterr().out
    argv = ["gaps", "accept", family, "--store", store_path, "--answer", "答案。"]
    assert main(argv) == 2
    assert "already rejected by carol" in one_line_error(capsys)
    printed = gaps_json(store_path, capsys)  # mined again: shown as rejected, not re-proposed
    (cluster,) = [c for c in printed["clusters"] if FAMILY_CARD[0] in c["questions"]]
    assert (cluster["proposal"]["id"], cluster["proposal"]["status"]) == (family, "rejected")


def test_list_shows_the_proposals_and_filters_by_status(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    printed = gaps_json(store_path, capsys)
    family = proposal_id(printed, FAMILY_CARD[0])
    assert main(["gaps", "reject", family, "--store", store_path]) == 0
    capsys.readouterr()
    assert main(["gaps", "list", "--store", store_path, "--status", "open", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(listed) == 2 and all(p["status"] == "open" for p in listed)
    assert family not in {p["id"] for p in listed}
    assert main(["gaps", "list", "--store", store_path]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and any(
        family in line and "rejected by walletfaq" in line for line in lines
    )


def test_list_of_a_store_without_proposals_says_so(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gaps", "list", "--store", store_path, "--status", "accepted"]) == 0
    assert "no accepted proposals" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["gaps", "--json"], "needs --store URL"),
        (["gaps", "accept", "prop-000000000000", "--store", "{store}"], "no proposal"),
        (["gaps", "reject", "not a proposal id", "--store", "{store}"], "is not valid"),
        (["gaps", "--store", "{store}", "--since", "yesterday"], "is not a time"),
    ],
)
def test_a_bad_gaps_command_is_one_line_error_with_status_2(
    store_path: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([a.format(store=store_path) for a in argv]) == 2
    assert message in one_line_error(capsys)


def test_report_mines_the_gaps_without_recording_proposals(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["report", "--store", store_path, "--since", "2026-03-01", "--until", "2026-03-02"]
    assert main([*argv, "--json", "--model", "keyword-test"]) == 0
    gaps = json.loads(capsys.readouterr().out)["gaps"]
    assert len(gaps) == 3 and all(row["proposal_id"] is None for row in gaps)
    with open_store(store_path) as store:
        assert store.proposals() == ()
    printed = gaps_json(store_path, capsys)  # recorded now: the report shows their ids
    assert main([*argv, "--json", "--model", "keyword-test"]) == 0
    shown = {row["id"]: row["proposal_id"] for row in json.loads(capsys.readouterr().out)["gaps"]}
    assert shown == {c["id"]: c["proposal"]["id"] for c in printed["clusters"]}


def test_report_says_how_many_gap_clusters_and_shows_them_on_the_page(
    store_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["report", "--store", store_path, "--since", "2026-03-01", "--until", "2026-03-02"]
    out = tmp_path / "report.html"
    assert main([*argv, "--out", str(out), "--model", "keyword-test"]) == 0
    assert "3 gap clusters (walletfaq gaps lists them)" in capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    assert 'id="gaps-table"' in page and "proposal_id" in page


def test_report_without_gaps_loads_no_model(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["report", "--store", store_path, "--since", "2026-03-01", "--until", "2026-03-02"]
    assert main([*argv, "--json", "--no-gaps", "--model", "no-such-model"]) == 0
    assert json.loads(capsys.readouterr().out)["gaps"] is None
