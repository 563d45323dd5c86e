"""Gap mining (issue 19, part 3): which logged questions are misses, how they are clustered,
what each cluster proposes, and what accepting a proposal writes.

A keyword encoder stands in for a model: texts that share a topic keyword are near each other
(cosine about 0.9), texts without a shared keyword are far apart, so the clusters are known in
advance and the tests run in milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import walletfaq
from tests.conftest import TINY_ENTRIES
from tests.gaps_support import BACKGROUND, FAMILY_CARD, INVOICES, LOGIN_WORDS, KeywordEncoder
from walletfaq import Corpus, FAQRetriever, GapError, WalletFAQError
from walletfaq.data.contacts import corpus_with_contacts
from walletfaq.data.corpus import TEXT_LIMITS, bundled_data_dir
from walletfaq.quality.gaps import (
    AddAlts,
    Clustering,
    GapCluster,
    GapReport,
    NewEntry,
    TrafficQuestion,
    apply_proposal,
    cluster_id,
    find_gaps,
    miss_reason,
)
from walletfaq.quality.gaps.proposals import belongs_to_entry, propose
from walletfaq.quality.gaps.traffic import MAX_QUESTION_CHARS

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)


@pytest.fixture
def retriever() -> FAQRetriever:
    r = FAQRetriever.build(Corpus.from_entries(TINY_ENTRIES, source="tiny"), model=KeywordEncoder())
    r.threshold = 0.8
    return r


def handoffs(questions: Sequence[str], start: int = 0) -> list[TrafficQuestion]:
    """Handed-off questions, one minute apart, with request ids from ``start``."""
    return [
        TrafficQuestion(
            q, "handoff", request_id=f"r{start + i}", asked_at=T0 + timedelta(minutes=start + i)
        )
        for i, q in enumerate(questions)
    ]


def traffic() -> list[TrafficQuestion]:
    """Three topics (a new one, one near the "login" entry, another new one, asked in that
    order) among unrelated questions, all handed off."""
    return [
        *handoffs(FAMILY_CARD),
        *handoffs(LOGIN_WORDS, start=100),
        *handoffs(INVOICES, start=200),
        *handoffs(BACKGROUND, start=300),
    ]


TOPIC_MISSES = len(FAMILY_CARD) + len(LOGIN_WORDS) + len(INVOICES) + len(BACKGROUND)


def cluster_of(report: GapReport, question: str) -> GapCluster:
    (cluster,) = [c for c in report.clusters if question in c.questions]
    return cluster


# ----------------------------------------------------------------------------- misses
@pytest.mark.parametrize(
    ("question", "reason"),
    [
        (TrafficQuestion("q", "handoff"), "handoff"),
        (TrafficQuestion("q", "answer", "login", 0.9, 0.2, helpful=False), "not_helpful"),
        (TrafficQuestion("q", "clarify", "login", 0.9, 0.001), "clarify"),
        (TrafficQuestion("q", "answer", "login", 0.9, 0.004), "low_margin"),
    ],
)
def test_each_rule_selects_its_misses(question: TrafficQuestion, reason: str) -> None:
    assert miss_reason(question, low_margin=0.01) == reason


def test_refused_question_is_never_a_miss_even_with_negative_feedback() -> None:
    assert miss_reason(TrafficQuestion("q", "refuse", helpful=False), 0.01) is None


def test_answered_with_a_high_margin_or_no_second_hit_is_not_a_miss() -> None:
    assert miss_reason(TrafficQuestion("q", "answer", "login", 0.9, 0.05), 0.01) is None
    assert miss_reason(TrafficQuestion("q", "answer", "login", 0.9, None), 0.01) is None


def test_positive_feedback_clears_low_margin_and_clarify_but_not_handoff() -> None:
    assert miss_reason(TrafficQuestion("q", "answer", "a", 0.9, 0.001, helpful=True), 0.01) is None
    assert miss_reason(TrafficQuestion("q", "clarify", "a", 0.9, 0.001, helpful=True), 0.01) is None
    assert miss_reason(TrafficQuestion("q", "handoff", helpful=True), 0.01) == "handoff"


def test_refused_questions_are_left_out_of_clusters_and_counted(retriever: FAQRetriever) -> None:
    refused = [TrafficQuestion(q, "refuse", request_id=f"x{i}") for i, q in enumerate(FAMILY_CARD)]
    report = find_gaps(retriever, traffic() + refused)
    assert report.refused == len(FAMILY_CARD)
    assert report.misses == TOPIC_MISSES
    assert all(m.decision != "refuse" for c in report.clusters for m in c.members)
    assert report.to_dict() == find_gaps(retriever, traffic()).to_dict()


def test_answered_questions_with_high_margin_are_not_clustered(retriever: FAQRetriever) -> None:
    answered = [
        TrafficQuestion(q, "answer", "login", 0.95, 0.3, request_id=f"a{i}")
        for i, q in enumerate(LOGIN_WORDS)
    ]
    logged = [
        *handoffs(FAMILY_CARD),
        *answered,
        *handoffs(INVOICES, 200),
        *handoffs(BACKGROUND, 300),
    ]
    report = find_gaps(retriever, logged)
    assert report.misses == TOPIC_MISSES - len(LOGIN_WORDS)
    assert all(set(c.questions).isdisjoint(LOGIN_WORDS) for c in report.clusters)


# ----------------------------------------------------------------------------- clusters
def test_a_planted_topic_comes_out_as_one_cluster(retriever: FAQRetriever) -> None:
    report = find_gaps(retriever, traffic())
    assert sorted(cluster_of(report, FAMILY_CARD[0]).questions) == sorted(FAMILY_CARD)
    assert sorted(sorted(c.questions) for c in report.clusters) == sorted(
        sorted(topic) for topic in (FAMILY_CARD, LOGIN_WORDS, INVOICES)
    )
    assert report.noise == len(BACKGROUND)


def test_cluster_ids_are_the_same_across_runs_and_input_orders(retriever: FAQRetriever) -> None:
    shuffled = traffic()
    random.Random(7).shuffle(shuffled)
    first, second = find_gaps(retriever, traffic()), find_gaps(retriever, shuffled)
    assert [c.id for c in first.clusters] == [c.id for c in second.clusters]
    assert first.to_dict() == second.to_dict() == find_gaps(retriever, traffic()).to_dict()


def test_cluster_id_is_a_short_hash_of_the_sorted_member_questions(
    retriever: FAQRetriever,
) -> None:
    cluster = cluster_of(find_gaps(retriever, traffic()), FAMILY_CARD[0])
    digest = hashlib.sha256("\n".join(sorted(FAMILY_CARD)).encode()).hexdigest()[:12]
    assert cluster.id == cluster_id(reversed(cluster.questions)) == digest


def test_repeats_count_as_traffic_and_every_member_question_is_listed(
    retriever: FAQRetriever,
) -> None:
    report = find_gaps(retriever, traffic() + handoffs(FAMILY_CARD[:2], start=400))
    cluster = cluster_of(report, FAMILY_CARD[0])
    assert cluster.size == len(FAMILY_CARD) + 2 == len(cluster.questions)
    assert sorted(cluster.questions) == sorted(FAMILY_CARD + FAMILY_CARD[:2])
    assert len(cluster.representatives) == 5 == len(set(cluster.representatives))


def test_one_question_asked_often_enough_is_a_cluster_of_its_own(retriever: FAQRetriever) -> None:
    weather = BACKGROUND[0]  # asked once in traffic(), twice more here
    report = find_gaps(retriever, traffic() + handoffs([weather] * 2, start=400))
    assert cluster_of(report, weather).questions == (weather,) * 3
    assert report.noise == len(BACKGROUND) - 1


def test_clusters_are_ranked_by_traffic_then_by_recency(retriever: FAQRetriever) -> None:
    report = find_gaps(retriever, traffic())
    assert [c.size for c in report.clusters] == [5, 4, 4]
    assert report.clusters[1].questions[0] in INVOICES  # asked after the login questions
    assert report.clusters[2].questions[0] in LOGIN_WORDS


def test_too_few_misses_give_an_empty_report(retriever: FAQRetriever) -> None:
    report = find_gaps(retriever, handoffs(FAMILY_CARD[:2]))
    assert (report.clusters, report.noise, report.misses) == ((), 2, 2)
    assert find_gaps(retriever, []).to_dict() == {"clusters": []}


def test_since_keeps_only_questions_asked_at_or_after_it(retriever: FAQRetriever) -> None:
    report = find_gaps(retriever, traffic(), since=T0 + timedelta(minutes=100))
    assert report.considered == TOPIC_MISSES - len(FAMILY_CARD)
    assert all(FAMILY_CARD[0] not in c.questions for c in report.clusters)


# ----------------------------------------------------------------------------- proposals
def test_a_cluster_near_an_existing_entry_proposes_its_alt_questions(
    retriever: FAQRetriever,
) -> None:
    login = cluster_of(find_gaps(retriever, traffic()), LOGIN_WORDS[0])
    assert login.nearest_entry == "login"
    assert login.score >= retriever.threshold
    assert login.proposal == AddAlts("login", tuple(login.representatives))


def test_a_cluster_far_from_every_entry_proposes_a_new_entry(retriever: FAQRetriever) -> None:
    cluster = cluster_of(find_gaps(retriever, traffic()), FAMILY_CARD[0])
    assert cluster.score < retriever.threshold
    assert isinstance(cluster.proposal, NewEntry)
    assert cluster.proposal.suggested_question == cluster.questions[0]
    assert set(cluster.proposal.questions) == set(FAMILY_CARD) - {cluster.questions[0]}


def test_the_bar_decides_between_add_alts_and_new_entry(retriever: FAQRetriever) -> None:
    retriever.threshold = 0.99
    assert cluster_of(find_gaps(retriever, traffic()), LOGIN_WORDS[0]).proposal.kind == "new_entry"
    lowered = find_gaps(retriever, traffic(), bar_delta=0.5)
    assert cluster_of(lowered, LOGIN_WORDS[0]).proposal.kind == "add_alts"


def test_a_majority_rule_can_be_asked_for_with_min_share(retriever: FAQRetriever) -> None:
    assert cluster_of(find_gaps(retriever, traffic()), LOGIN_WORDS[0]).top_entry_share == 1.0
    assert belongs_to_entry(retriever, "login", score=0.95, share=0.2)
    assert not belongs_to_entry(retriever, "login", score=0.95, share=0.5, min_share=0.5)
    assert belongs_to_entry(retriever, "login", score=0.95, share=0.6, min_share=0.5)


def test_add_alts_leaves_out_questions_the_entry_already_has(retriever: FAQRetriever) -> None:
    known = ("无法登录怎么办", "無法登錄怎麼辦 ")  # the entry's question, as written and in zh-Hant
    ordered = [*known, LOGIN_WORDS[0], LOGIN_WORDS[0], *LOGIN_WORDS[1:]]
    proposal = propose(retriever, ordered, "login", score=0.95, share=1.0)
    assert proposal == AddAlts("login", LOGIN_WORDS)


def test_a_hotline_entry_never_gets_alt_questions() -> None:
    corpus, contacts = corpus_with_contacts(
        Corpus.from_entries(TINY_ENTRIES), bundled_data_dir() / "contacts.json"
    )
    r = FAQRetriever.build(corpus, model=KeywordEncoder(), contacts=contacts)
    hotline = next(iter(contacts or ())).entry_id
    assert hotline in r.corpus
    assert not belongs_to_entry(r, hotline, score=1.0, share=1.0, bar_delta=1.0)


# ----------------------------------------------------------------------------- output
def test_json_has_exactly_the_shape_of_the_issue(retriever: FAQRetriever) -> None:
    report = find_gaps(retriever, traffic())
    data = json.loads(report.to_json())
    assert list(data) == ["clusters"]
    for cluster, shown in zip(report.clusters, data["clusters"], strict=True):
        assert list(shown) == ["id", "size", "questions", "nearest_entry", "score", "proposal"]
        assert shown["questions"] == list(cluster.questions)
        assert shown["size"] == len(shown["questions"])
    kinds = {c["proposal"]["kind"]: list(c["proposal"]) for c in data["clusters"]}
    assert kinds == {
        "add_alts": ["kind", "entry_id", "questions"],
        "new_entry": ["kind", "suggested_question", "questions"],
    }


def test_to_frame_has_one_row_per_cluster_with_named_columns(retriever: FAQRetriever) -> None:
    report = find_gaps(retriever, traffic())
    frame = report.to_frame()
    assert list(frame.columns) == [
        "id", "size", "kind", "nearest_entry", "score", "top_entry_share",
        "distinct_questions", "representatives", "last_asked",
        "not_helpful", "handoff", "clarify", "low_margin",
    ]  # fmt: skip
    assert list(frame["id"]) == [c.id for c in report.clusters]
    assert list(frame["handoff"]) == [c.size for c in report.clusters]


def test_an_empty_report_has_a_frame_with_the_same_columns() -> None:
    frame = GapReport((), noise=0, misses=0, considered=0, refused=0).to_frame()
    assert len(frame) == 0 and "nearest_entry" in frame.columns


def test_gaps_are_public_names_of_the_package() -> None:
    assert walletfaq.find_gaps is find_gaps
    assert walletfaq.TrafficQuestion is TrafficQuestion
    assert issubclass(GapError, WalletFAQError)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("record", "where"),
    [
        ({"question": "q", "decision": "maybe"}, "questions[2].decision"),
        ({"question": "", "decision": "handoff"}, "questions[2].question"),
        ({"question": 5, "decision": "handoff"}, "questions[2].question"),
        ({"question": "q", "decision": "answer", "margin": -0.1}, "questions[2].margin"),
        ({"question": "q", "decision": "answer", "top_score": float("nan")}, "top_score"),
        ({"question": "q", "decision": "answer", "top_entry": "Bad Id"}, "top_entry"),
        ({"question": "q", "decision": "answer", "helpful": "yes"}, "questions[2].helpful"),
        ({"question": "q", "decision": "handoff", "asked_at": "2025"}, "asked_at"),
        ({"question": "q", "decision": "handoff", "request_id": ""}, "request_id"),
        ({"question": "q", "decision": "handoff", "score": 1}, "questions[2].score"),
        ({"decision": "handoff"}, "questions[2].question"),
        ({"question": "x" * (MAX_QUESTION_CHARS + 1), "decision": "handoff"}, "question"),
    ],
)
def test_invalid_logged_questions_name_the_position_and_field(
    retriever: FAQRetriever, record: dict, where: str
) -> None:
    good = {"question": "亲属卡怎么开通", "decision": "handoff"}
    with pytest.raises(GapError, match=r"^questions\[2\]") as caught:
        find_gaps(retriever, [good, good, record])
    assert where in str(caught.value)


def test_an_item_that_is_not_a_logged_question_is_refused(retriever: FAQRetriever) -> None:
    with pytest.raises(GapError, match=r"questions\[1\]: expected a TrafficQuestion"):
        find_gaps(retriever, [TrafficQuestion("q", "handoff"), 42])  # type: ignore[list-item]
    with pytest.raises(GapError, match="questions: expected an iterable"):
        find_gaps(retriever, "亲属卡怎么开通")  # type: ignore[arg-type]


def test_constructing_an_invalid_traffic_question_raises_naming_the_field() -> None:
    with pytest.raises(GapError, match="^decision: expected one of"):
        TrafficQuestion("q", "ignored")  # type: ignore[arg-type]


def test_since_needs_every_time_and_comparable_ones(retriever: FAQRetriever) -> None:
    with pytest.raises(GapError, match=r"questions\[0\]\.asked_at: missing"):
        find_gaps(retriever, [TrafficQuestion("q", "handoff")], since=T0)
    naive = TrafficQuestion("q", "handoff", asked_at=datetime(2025, 3, 2))
    with pytest.raises(GapError, match=r"questions\[0\]\.asked_at: cannot be compared"):
        find_gaps(retriever, [naive], since=T0)
    with pytest.raises(GapError, match=r"questions\[1\]\.asked_at: has no timezone"):
        find_gaps(retriever, [TrafficQuestion("q", "handoff", asked_at=T0), naive])


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"min_cluster_size": 1}, "min_cluster_size"),
        ({"min_cluster_size": 2.5}, "min_cluster_size"),
        ({"low_margin": -0.01}, "low_margin"),
        ({"low_margin": float("inf")}, "low_margin"),
        ({"bar_delta": "0.1"}, "bar_delta"),
        ({"min_share": 1.0}, "min_share"),
        ({"clustering": "leaf"}, "clustering"),
        ({"since": "2025-03-01"}, "since"),
    ],
)
def test_invalid_parameters_are_refused_by_name(
    retriever: FAQRetriever, arguments: dict, field: str
) -> None:
    with pytest.raises(GapError, match=f"^{field}: "):
        find_gaps(retriever, traffic(), **arguments)


def test_clustering_settings_are_checked() -> None:
    with pytest.raises(GapError, match="^method: "):
        Clustering(method="single")  # type: ignore[arg-type]
    with pytest.raises(GapError, match="^epsilon: "):
        Clustering(epsilon=-1.0)


def test_only_a_faq_retriever_is_mined() -> None:
    with pytest.raises(GapError, match="^retriever: expected a FAQRetriever"):
        find_gaps(object(), [])  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- accepting
def login_cluster(retriever: FAQRetriever, extra: Sequence[str] = ()) -> GapCluster:
    report = find_gaps(retriever, traffic() + handoffs(extra, start=400))
    return cluster_of(report, LOGIN_WORDS[0])


def test_accepting_add_alts_appends_new_alt_questions_once(retriever: FAQRetriever) -> None:
    cluster = login_cluster(retriever)
    before = retriever.entry("login")
    entry = apply_proposal(retriever, cluster)
    assert entry.alt_questions[: len(before.alt_questions)] == before.alt_questions
    assert set(entry.alt_questions[len(before.alt_questions) :]) == set(LOGIN_WORDS)
    assert (entry.question, entry.answer) == (before.question, before.answer)
    retriever.update(entry)
    assert apply_proposal(retriever, cluster) == entry  # applying again adds nothing


def test_accepting_add_alts_skips_copies_in_another_script(retriever: FAQRetriever) -> None:
    cluster = login_cluster(retriever)
    assert isinstance(cluster.proposal, AddAlts)
    retriever.update(apply_proposal(retriever, cluster))
    traditional = AddAlts("login", ("手機登錄一直失敗", "登录不了怎么搞 "))
    entry = apply_proposal(retriever, _with(cluster, traditional))
    assert entry == retriever.entry("login")


def test_accepting_add_alts_respects_the_alt_question_limit(
    retriever: FAQRetriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    import walletfaq.quality.gaps.proposals as proposals

    monkeypatch.setattr(proposals, "MAX_ALT_QUESTIONS", 3)
    with pytest.raises(GapError, match="^alt_questions: .* more than the 3"):
        apply_proposal(retriever, login_cluster(retriever))


def test_every_logged_question_fits_an_alt_question() -> None:
    assert MAX_QUESTION_CHARS <= TEXT_LIMITS["alt_questions"]
    assert MAX_QUESTION_CHARS <= TEXT_LIMITS["question"]


def test_accepting_add_alts_takes_no_new_entry_fields(retriever: FAQRetriever) -> None:
    with pytest.raises(GapError, match="^answer: not used by an add_alts proposal"):
        apply_proposal(retriever, login_cluster(retriever), answer="...")


def test_accepting_add_alts_of_a_removed_entry_is_refused(retriever: FAQRetriever) -> None:
    cluster = login_cluster(retriever)
    retriever.remove("login")
    with pytest.raises(GapError, match="^entry_id: entry 'login' .* no longer exists"):
        apply_proposal(retriever, cluster)


def test_accepting_a_new_entry_needs_what_a_person_writes(retriever: FAQRetriever) -> None:
    cluster = cluster_of(find_gaps(retriever, traffic()), FAMILY_CARD[0])
    with pytest.raises(GapError, match="^answer: required for a new_entry proposal"):
        apply_proposal(retriever, cluster, entry_id="family-card", category="cards")
    with pytest.raises(GapError, match="^entry_id: entry 'login' already exists"):
        apply_proposal(retriever, cluster, entry_id="login", category="cards", answer="...")
    with pytest.raises(GapError, match="^id: "):
        apply_proposal(retriever, cluster, entry_id="Family Card", category="c", answer="...")


def test_an_accepted_new_entry_answers_the_topic(retriever: FAQRetriever) -> None:
    cluster = cluster_of(find_gaps(retriever, traffic()), FAMILY_CARD[0])
    entry = apply_proposal(
        retriever, cluster, entry_id="family-card", category="cards", answer="在设置中开通。"
    )
    assert entry.question == cluster.questions[0]
    assert sorted(entry.questions()) == sorted(FAMILY_CARD)
    retriever.update(entry)
    assert retriever.ask("亲属卡可以设置额度吗", k=1)[0].id == "family-card"


def _with(cluster, proposal):
    from dataclasses import replace

    return replace(cluster, proposal=proposal)


# ----------------------------------------------------------------------------- properties
POOL = (*FAMILY_CARD, *LOGIN_WORDS, *INVOICES, *BACKGROUND)


@st.composite
def logs(draw: st.DrawFn) -> list[TrafficQuestion]:
    n = draw(st.integers(0, 40))
    out = []
    for i in range(n):
        decision = draw(st.sampled_from(("answer", "clarify", "handoff", "refuse")))
        out.append(
            TrafficQuestion(
                question=draw(st.sampled_from(POOL)),
                decision=decision,
                top_entry=None if decision in ("handoff", "refuse") else "login",
                top_score=draw(st.none() | st.floats(0, 1)),
                margin=draw(st.none() | st.floats(0, 0.05)),
                helpful=draw(st.none() | st.booleans()),
                request_id=f"r{i}",
                asked_at=T0 + timedelta(minutes=draw(st.integers(0, 10_000))),
            )
        )
    return out


@given(traffic=logs())
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_every_miss_is_in_at_most_one_cluster_and_counts_add_up(
    retriever: FAQRetriever, traffic: list[TrafficQuestion]
) -> None:
    report = find_gaps(retriever, traffic)
    misses = [q for q in traffic if miss_reason(q, 0.01) is not None]
    clustered = [m.request_id for c in report.clusters for m in c.members]
    assert len(clustered) == len(set(clustered))
    assert set(clustered) <= {q.request_id for q in misses}
    assert sum(c.size for c in report.clusters) + report.noise == report.misses == len(misses)
    assert report.refused == sum(q.decision == "refuse" for q in traffic)
    assert [c.size for c in report.clusters] == sorted(
        (c.size for c in report.clusters), reverse=True
    )
