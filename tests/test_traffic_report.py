"""The traffic report (``walletfaq.traffic_report``): its tables' numbers on traffic planted
in a store (SQLite and PostgreSQL), the window and its periods, an empty window, and gap
clusters from any report with ``to_frame()``. The page and the command:
``test_traffic_report_page.py``."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.store_support import store_with_small_corpus  # noqa: F401 (a fixture)
from tests.traffic_support import (  # noqa: F401 (a fixture)
    T0,
    WEEK,
    Planted,
    sqlite_store_with_small_corpus,
    week_of_traffic,
)
from walletfaq import WalletFAQError
from walletfaq.quality.traffic_report import traffic_report
from walletfaq.quality.traffic_window import MAX_WINDOW, report_window
from walletfaq.store import Store

# --- the tables ----------------------------------------------------------------------------


def test_rates_count_each_decision_per_day(store: Store) -> None:
    week_of_traffic(store)
    rates = traffic_report(store, *WEEK).rates
    assert list(rates["period"]) == [pd.Timestamp(T0 + timedelta(days=d)) for d in range(7)]
    assert list(rates["queries"]) == [3, 2, 2, 2, 1, 0, 2]
    assert list(rates["answer"]) == [3, 2, 2, 0, 0, 0, 0]
    assert list(rates["clarify"]) == [0, 0, 0, 2, 0, 0, 0]
    assert list(rates["handoff"]) == [0, 0, 0, 0, 1, 0, 1]
    assert list(rates["refuse"]) == [0, 0, 0, 0, 0, 0, 1]
    assert list(rates["handoff_rate"])[4:] == pytest.approx([1.0, math.nan, 0.5], nan_ok=True)


def test_the_rates_of_a_period_add_up_to_one(store: Store) -> None:
    week_of_traffic(store)
    rates = traffic_report(store, *WEEK).rates.dropna()
    shares = rates[["answer_rate", "clarify_rate", "handoff_rate", "refuse_rate"]].sum(axis=1)
    assert list(shares) == pytest.approx([1.0] * len(rates))


def test_entries_count_answers_and_the_feedback_on_them(store: Store) -> None:
    week_of_traffic(store)
    entries = traffic_report(store, *WEEK).entries.set_index("entry_id")
    assert list(entries.index) == ["q1", "q2", "q3", "q4"]  # most answered first
    assert list(entries["answered"]) == [5, 2, 0, 0]
    assert list(entries["helpful"]) == [2, 1, 0, 0]
    assert list(entries["not_helpful"]) == [1, 0, 0, 0]
    assert entries.loc["q1", "helpfulness"] == pytest.approx(2 / 3)
    assert math.isnan(entries.loc["q3", "helpfulness"])
    assert list(entries["named_instead"]) == [0, 0, 1, 1]  # q3 on q1's answer; q4 on a hand-off


def test_helpfulness_has_its_wilson_interval(sqlite_store: Store) -> None:
    week_of_traffic(sqlite_store)
    q1 = traffic_report(sqlite_store, *WEEK).entries.iloc[0]
    assert (q1["helpfulness_low"], q1["helpfulness_high"]) == pytest.approx(
        (0.2077, 0.9385), abs=1e-4
    )


def test_an_entry_with_fewer_ratings_than_the_minimum_is_flagged(sqlite_store: Store) -> None:
    week_of_traffic(sqlite_store)
    default = traffic_report(sqlite_store, *WEEK).entries
    assert default["few_ratings"].all()  # 3 ratings at most, under 5
    lenient = traffic_report(sqlite_store, *WEEK, min_ratings=3).entries.set_index("entry_id")
    assert list(lenient["few_ratings"]) == [False, True, True, True]


def test_latency_percentiles_per_period_and_overall(sqlite_store: Store) -> None:
    planted = Planted()
    for ms in range(1, 101):
        planted.add(T0 + timedelta(minutes=ms), latency_ms=float(ms))
    planted.add(T0 + timedelta(days=1), latency_ms=500.0)
    planted.log(sqlite_store)
    latency = traffic_report(sqlite_store, T0, T0 + timedelta(days=3)).latency
    assert list(latency["scope"]) == ["period", "period", "period", "overall"]
    first = latency.iloc[0]
    assert (first["queries"], first["max_ms"]) == (100, 100.0)
    assert [first["p50_ms"], first["p95_ms"], first["p99_ms"]] == pytest.approx(
        [50.5, 95.05, 99.01]
    )
    assert latency.iloc[1]["p99_ms"] == 500.0
    assert latency.iloc[2]["queries"] == 0 and math.isnan(latency.iloc[2]["p50_ms"])
    overall = latency.iloc[-1]
    assert overall["queries"] == 101 and pd.isna(overall["period"]) and overall["max_ms"] == 500


def test_top_questions_are_the_most_handed_off_masked_as_stored(sqlite_store: Store) -> None:
    planted = Planted()
    for minute in range(3):
        planted.add(
            T0 + timedelta(minutes=minute),
            "handoff",
            "q2",
            question="怎么开发票",
            score=0.3 + minute / 10,
        )
    planted.add(T0, "handoff", question="我的手机13812345678收不到验证码")
    planted.add(T0, "handoff", question="我的手机13912345678收不到验证码")
    planted.add(T0, "handoff", question="只问过一次")
    planted.add(T0, "answer", question="怎么开发票")  # answered: not a hand-off
    planted.log(sqlite_store)
    report = traffic_report(sqlite_store, *WEEK, top=2)
    top = report.top_questions
    assert list(top["question"]) == ["怎么开发票", "我的手机[手机号]收不到验证码"]
    assert list(top["asked"]) == [3, 2]
    assert (top.iloc[0]["nearest_entry"], top.iloc[0]["top_score"]) == ("q2", pytest.approx(0.5))
    assert top.iloc[0]["last_asked"] == pd.Timestamp(T0 + timedelta(minutes=2))
    assert report.summary["handoff_questions"] == 3


def test_the_summary_holds_the_headline_numbers(store: Store) -> None:
    week_of_traffic(store)
    summary = traffic_report(store, *WEEK).summary
    assert {k: summary[k] for k in ("queries", "answer", "clarify", "handoff", "refuse")} == {
        "queries": 12, "answer": 7, "clarify": 2, "handoff": 2, "refuse": 1,
    }  # fmt: skip
    assert summary["answer_rate"] == pytest.approx(7 / 12)
    assert (summary["feedback"], summary["answers_rated"], summary["helpful"]) == (5, 4, 3)
    assert summary["helpfulness"] == pytest.approx(0.75)
    assert (summary["entries_answered"], summary["period"], summary["gap_clusters"]) == (
        2,
        "day",
        None,
    )
    assert summary["latency_p50_ms"] == 10.0
    assert summary["since"] == T0.isoformat()


def test_queries_outside_the_window_are_left_out(sqlite_store: Store) -> None:
    planted = Planted()
    planted.add(T0 - timedelta(microseconds=1))
    planted.add(T0)  # the start is in
    planted.add(T0 + timedelta(days=7))  # the end is out
    planted.log(sqlite_store)
    assert traffic_report(sqlite_store, *WEEK).summary["queries"] == 1


def test_feedback_on_queries_outside_the_window_is_left_out(sqlite_store: Store) -> None:
    planted = Planted()
    before = planted.add(T0 - timedelta(hours=1))
    planted.add(T0 + timedelta(hours=1))
    planted.log(sqlite_store)
    sqlite_store.add_feedback(before, True)  # given now: after the window's start
    report = traffic_report(sqlite_store, *WEEK)
    assert (report.summary["feedback"], report.entries.iloc[0]["rated"]) == (0, 0)


def test_an_empty_window_reports_no_traffic(sqlite_store: Store) -> None:
    report = traffic_report(sqlite_store, *WEEK)
    assert report.empty and report.summary["queries"] == 0
    assert report.summary["answer_rate"] is None and report.summary["latency_p50_ms"] is None
    assert list(report.rates["queries"]) == [0] * 7
    assert report.entries.empty and report.top_questions.empty
    page = report.html()
    assert "No traffic in this window" in page and "<img" not in page


# --- the window ----------------------------------------------------------------------------


NOW = datetime(2026, 5, 10, 12, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "back"),
    [("30m", timedelta(minutes=30)), ("24h", timedelta(hours=24)), ("7d", timedelta(days=7)),
     ("2w", timedelta(weeks=2)), (" 7d ", timedelta(days=7))],
)  # fmt: skip
def test_a_duration_goes_back_from_now(text: str, back: timedelta) -> None:
    window = report_window(text, now=NOW)
    assert (window.since, window.until) == (NOW - back, NOW)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-05-01", T0),
        ("2026-05-01T08:00", T0 + timedelta(hours=8)),
        ("2026-05-01 08:00:30", T0 + timedelta(hours=8, seconds=30)),
        ("2026-05-01T08:00:00Z", T0 + timedelta(hours=8)),
        ("2026-05-01T08:00+08:00", T0),
    ],
)
def test_an_iso_time_is_read_in_utc_unless_it_has_an_offset(text: str, moment: datetime) -> None:
    assert report_window(text, now=NOW).since == moment


def test_until_takes_the_same_forms() -> None:
    window = report_window("2026-05-01", "1d", now=NOW)
    assert (window.since, window.until) == (T0, NOW - timedelta(days=1))
    assert report_window(timedelta(hours=3), now=NOW).since == NOW - timedelta(hours=3)


def test_a_window_of_two_days_or_less_is_reported_per_hour() -> None:
    two_days = report_window(T0, T0 + timedelta(days=2))
    assert two_days.period == "hour" and len(two_days.starts()) == 48
    longer = report_window(T0, T0 + timedelta(days=2, seconds=1))
    assert longer.period == "day" and len(longer.starts()) == 3


def test_periods_start_on_the_hour_or_at_midnight_utc() -> None:
    shanghai = timezone(timedelta(hours=8))
    hourly = report_window(datetime(2026, 5, 1, 9, 45, tzinfo=shanghai), "2026-05-02")
    assert hourly.starts()[0] == datetime(2026, 5, 1, 1, tzinfo=timezone.utc)
    assert hourly.bucket(datetime(2026, 5, 1, 10, 59, tzinfo=shanghai)) == hourly.starts()[1]
    daily = report_window("2026-05-01T17:00", "2026-05-05")
    assert daily.starts()[0] == T0 and daily.bucket(T0 + timedelta(hours=23)) == T0


def test_hourly_rates_bucket_queries_by_hour(sqlite_store: Store) -> None:
    planted = Planted()
    for minute in (0, 59, 60, 125):
        planted.add(T0 + timedelta(minutes=minute))
    planted.log(sqlite_store)
    rates = traffic_report(sqlite_store, T0, T0 + timedelta(hours=4)).rates
    assert list(rates["queries"]) == [2, 1, 1, 0]


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("yesterday", None, "is not a time"),
        ("7 days", None, "is not a time"),
        ("0d", None, "no time at all"),
        ("-7d", None, "is not a time"),
        ("2026-13-01", None, "is not a time"),
        (datetime(2026, 5, 1), None, "no time zone"),
        (timedelta(0), None, "positive duration"),
        ("2026-05-02", "2026-05-01", "the window is empty"),
        ("9999999d", None, "at most"),
        ("2000-01-01", None, "at most"),
        (7, None, "must be a datetime"),
    ],
)
def test_a_bad_window_is_refused_saying_why(since: object, until: object, message: str) -> None:
    with pytest.raises(WalletFAQError, match=message):
        report_window(since, until, now=NOW)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_text_is_a_window_start_or_a_clear_error(text: str) -> None:
    try:
        window = report_window(text, now=NOW)
    except WalletFAQError as exc:
        assert "since" in str(exc)
    else:
        assert window.since < window.until == NOW and window.until - window.since <= MAX_WINDOW


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 9_999_999), st.sampled_from("mhdw"))
def test_every_duration_is_read_exactly_or_refused_as_too_long(amount: int, unit: str) -> None:
    length = timedelta(**{{"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[unit]: amount})
    if length > MAX_WINDOW:
        with pytest.raises(WalletFAQError, match="at most"):
            report_window(f"{amount}{unit}", now=NOW)
    else:
        assert report_window(f"{amount}{unit}", now=NOW).since == NOW - length


@pytest.mark.parametrize("top", [0, -1, True, 2.5])
def test_top_must_be_a_positive_whole_number(sqlite_store: Store, top: object) -> None:
    with pytest.raises(WalletFAQError, match="top must be"):
        traffic_report(sqlite_store, *WEEK, top=top)  # type: ignore[arg-type]


# --- gap clusters --------------------------------------------------------------------------


class FakeGaps:
    """A gap report as far as the traffic report is concerned: clusters from ``to_frame``."""

    def __init__(self, rows: list[dict[str, object]]) -> None:
        self.rows = rows

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def gap_rows(count: int) -> list[dict[str, object]]:
    return [
        {"id": f"g{n}", "size": 10 - n, "questions": [f"问题{n}", "<b>别加粗</b>"],
         "nearest_entry": "q1", "score": 0.5, "proposal": {"kind": "new_entry"}}
        for n in range(count)
    ]  # fmt: skip


def test_the_report_shows_the_top_gap_clusters_of_a_gap_report(sqlite_store: Store) -> None:
    week_of_traffic(sqlite_store)
    report = traffic_report(sqlite_store, *WEEK, gaps=FakeGaps(gap_rows(5)), top=3)
    assert report.gaps is not None and list(report.gaps["id"]) == ["g0", "g1", "g2"]
    assert report.summary["gap_clusters"] == 5
    assert report.to_dict()["gaps"][0]["questions"] == ["问题0", "<b>别加粗</b>"]
    page = report.html()
    assert 'id="gaps-table"' in page and "问题0; &lt;b&gt;别加粗&lt;/b&gt;" in page
    assert "<b>别加粗" not in page


def test_without_a_gap_report_the_page_says_gaps_are_not_included(sqlite_store: Store) -> None:
    week_of_traffic(sqlite_store)
    report = traffic_report(sqlite_store, *WEEK)
    assert report.gaps is None and report.to_dict()["gaps"] is None
    assert "Gap clusters are not part of this report" in report.html()


def test_gaps_without_to_frame_are_refused(sqlite_store: Store) -> None:
    with pytest.raises(WalletFAQError, match="with to_frame"):
        traffic_report(sqlite_store, *WEEK, gaps=["not", "a", "report"])  # type: ignore[arg-type]
