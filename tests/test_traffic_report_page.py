"""The traffic report's page and command: the HTML page (logged text escaped, one file that
loads nothing, the store's password hidden, the question chart with or without a Chinese font),
``walletfaq report`` (the page, JSON, exit codes), and the page as headless Chromium draws it."""

from __future__ import annotations

import json
import re
import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.browser_support import headless_chromium  # noqa: F401 (a fixture)
from tests.store_support import PostgresCluster, small_corpus
from tests.traffic_support import (  # noqa: F401 (a fixture)
    HOSTILE,
    T0,
    WEEK,
    Planted,
    hostile_report,
    sqlite_store_with_small_corpus,
    week_of_traffic,
)
from walletfaq import WalletFAQError
from walletfaq.cli import main
from walletfaq.quality import traffic_plots
from walletfaq.quality.traffic_report import build_report, traffic_report
from walletfaq.quality.traffic_window import report_window
from walletfaq.store import Store, open_store

# --- the page ------------------------------------------------------------------------------


class Tags(HTMLParser):
    """The start tags of a page, their attributes' names, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_logged_text_comes_out_of_the_page_as_inert_text(sqlite_store: Store) -> None:
    page = hostile_report(sqlite_store).html()
    parsed = Tags()
    parsed.feed(page)
    allowed = set(
        "html head meta title style body header h1 h2 p code section div span img table tr th td "
        "footer".split()
    )
    assert parsed.tags <= allowed  # no <script>, no <b>, no element a question brought
    text = "".join(parsed.text)
    for question in HOSTILE:
        assert question in text  # shown literally, as the user wrote it
    assert parsed.attributes <= {"lang", "charset", "http-equiv", "content", "name", "class",
                                 "id", "data-key", "alt", "src"}  # fmt: skip


def test_the_page_is_one_file_that_loads_nothing(sqlite_store: Store, tmp_path: Path) -> None:
    week_of_traffic(sqlite_store)
    path = traffic_report(sqlite_store, *WEEK).to_html(tmp_path / "report.html")
    page = path.read_text(encoding="utf-8")
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert 'http-equiv="Content-Security-Policy" content="default-src \'none\'' in page
    assert "<link" not in page and "<script" not in page and "url(" not in page


def test_the_page_names_the_window_and_the_store(sqlite_store: Store) -> None:
    page = traffic_report(sqlite_store, *WEEK).html()
    assert "2026-05-01 00:00 → 2026-05-08 00:00 UTC (7 days, per day)" in page
    assert f"<code>{sqlite_store.url}</code>" in page


def test_the_store_url_is_shown_without_its_password(
    postgres_cluster: PostgresCluster, tmp_path: Path
) -> None:
    url = postgres_cluster.new_database().replace("postgres@", "postgres:s3cret-pw@")
    with open_store(url, create=True) as store:  # the test cluster trusts any password
        week_of_traffic(store)
        report = traffic_report(store, *WEEK)
    out = tmp_path / "report.html"
    argv = ["report", "--store", url, "--since", "2026-05-01", "--until", "2026-05-08"]
    assert main([*argv, "--json", "--out", str(out), "--no-gaps"]) == 0
    for text in (report.html(), json.dumps(report.to_dict()), out.read_text(encoding="utf-8")):
        assert "s3cret-pw" not in text and "postgres:***@" in text


def test_a_store_named_by_hand_has_its_password_hidden_too() -> None:
    window = report_window(*WEEK)
    report = build_report([], [], window, store="postgresql://bob:hunter2@db.internal/faq")
    assert "hunter2" not in report.html() and report.store == "postgresql://bob:***@db.internal/faq"


def test_the_hand_off_chart_is_drawn_with_a_chinese_font_when_one_is_installed(
    sqlite_store: Store,
) -> None:
    if not list(Path("/usr/share/fonts").rglob("NotoSansCJK*")):
        pytest.skip("fonts-noto-cjk is not installed (apt-get install fonts-noto-cjk)")
    font = traffic_plots.find_cjk_font()
    assert font is not None and "CJK" in font.name
    assert 'id="handoff-plot"' in hostile_report(sqlite_store).html()


def test_without_a_chinese_font_the_chart_is_left_out_and_the_page_says_so(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(traffic_plots, "find_cjk_font", lambda: None)
    page = hostile_report(sqlite_store).html()
    assert 'id="no-cjk-font"' in page and 'id="handoff-plot"' not in page
    assert 'id="handoff-table"' in page and "fonts-noto-cjk" in caplog.text


def test_a_report_that_cannot_be_written_says_where(sqlite_store: Store, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    report = traffic_report(sqlite_store, *WEEK)
    with pytest.raises(WalletFAQError, match="cannot write the report to"):
        report.to_html(tmp_path / "taken")


# --- the command line ----------------------------------------------------------------------


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    path = str(tmp_path / "faq.db")
    with open_store(path, create=True) as store:
        store.init(small_corpus(), author="alice")
        week_of_traffic(store)
    return path


def report_args(store_path: str, *more: str) -> list[str]:
    return [
        "report",
        "--store",
        store_path,
        "--since",
        "2026-05-01",
        "--until",
        "2026-05-08",
        "--no-gaps",  # gaps need a model: tests/test_gaps_cli.py checks them
        *more,
    ]


def test_report_writes_the_page_and_prints_the_headline(
    store_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    assert main(report_args(store_path, "--out", str(out))) == 0
    printed = capsys.readouterr().out
    assert "12 queries" in printed and "answered 58.3 %" in printed and f"wrote {out}" in printed
    assert 'data-key="queries"><span class="value">12<' in out.read_text(encoding="utf-8")


def test_report_json_prints_the_summary_and_every_table(
    store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(report_args(store_path, "--json", "--top", "1")) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"summary", "rates", "entries", "latency", "top_questions", "gaps"}
    assert printed["summary"]["queries"] == 12 and printed["gaps"] is None
    assert len(printed["rates"]) == 7 and printed["rates"][0]["period"].startswith(
        "2026-05-01T00:00"
    )
    assert printed["rates"][5]["answer_rate"] is None  # a day without queries
    assert [e["entry_id"] for e in printed["entries"]] == ["q1", "q2", "q3", "q4"]
    assert printed["latency"][-1] == {
        "scope": "overall", "period": None, "queries": 12, "p50_ms": 10.0, "p95_ms": 10.0,
        "p99_ms": 10.0, "max_ms": 10.0,
    }  # fmt: skip
    (question,) = printed["top_questions"]
    assert question == {
        "question": "怎么开发票", "asked": 2, "last_asked": "2026-05-07T00:00:00.000Z",
        "nearest_entry": "q4", "top_score": 0.5,
    }  # fmt: skip


def test_report_json_with_out_keeps_stdout_pure_json(
    store_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    assert main(report_args(store_path, "--json", "--out", str(out))) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["summary"]["queries"] == 12
    assert f"wrote {out}" in captured.err and out.is_file()


def test_report_on_an_empty_window_says_so(
    store_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    assert main(["report", "--store", store_path, "--since", "1h", "--out", str(out)]) == 0
    assert "no traffic in this window" in capsys.readouterr().out
    assert "No traffic in this window" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("more", "message"),
    [
        (["--since", "last week", "--json"], "since 'last week' is not a time"),
        (["--since", "7d", "--until", "soon", "--json"], "until 'soon' is not a time"),
        (["--since", "7d"], "without --out FILE"),
        (["--since", "7d", "--json", "--top", "0"], "top must be a positive"),
    ],
)
def test_a_bad_report_command_is_one_line_error_with_status_2(
    store_path: str, capsys: pytest.CaptureFixture[str], more: list[str], message: str
) -> None:
    assert main(["report", "--store", store_path, *more]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and captured.err.count("\n") == 1


def test_report_on_a_missing_store_is_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.db")
    assert main(["report", "--store", missing, "--since", "7d", "--json"]) == 2
    assert "no walletfaq store" in capsys.readouterr().err


# --- in a browser --------------------------------------------------------------------------


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def test_the_page_renders_in_headless_chromium(
    sqlite_store: Store, browser, tmp_path: Path
) -> None:
    week_of_traffic(sqlite_store)
    planted = Planted("hostile")
    planted.add(T0, "handoff", question=HOSTILE[0], latency_ms=5.0)
    planted.log(sqlite_store)
    path = traffic_report(sqlite_store, *WEEK).to_html(tmp_path / "report.html")
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    schemes: set[str] = set()
    page.on("request", lambda request: schemes.add(request.url.split(":", 1)[0]))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")

    def headline(key: str) -> str:
        return page.inner_text(f'#headline [data-key="{key}"] .value')

    assert headline("queries") == "13" and headline("answer_rate") == "53.8 %"
    assert headline("handoff_rate") == "23.1 %" and headline("latency_p50_ms") == "10.0 ms"
    for plot in ("rates-plot", "latency-plot", "handoff-plot"):
        size = page.eval_on_selector(
            f"#{plot}", "img => [img.complete, img.naturalWidth, img.naturalHeight]"
        )
        assert size[0] and size[1] > 0 and size[2] > 0, plot
    assert page.inner_text("#handoff-table").count(HOSTILE[0]) == 1  # shown as text
    assert page.evaluate("window.__pwned") is None
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    assert problems == [] and schemes <= {"file", "data"}
    width, height = png_size(shot.read_bytes())
    assert width == 1100 and height > 1500 and shot.stat().st_size > 50_000
