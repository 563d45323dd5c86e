"""The window of a traffic report: the time it covers and its periods (hours or days, UTC).

:func:`report_window` reads the window's ends as aware datetimes, durations back from now
(``timedelta`` or text: ``"7d"``, ``"24h"``) or ISO dates and times (:data:`WINDOW_RULE`); the
``walletfaq report`` options ``--since`` and ``--until`` go through it too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Literal

from walletfaq.errors import WalletFAQError

__all__ = ["HOURLY_WINDOW", "MAX_WINDOW", "WINDOW_RULE", "Period", "ReportWindow", "report_window"]

HOURLY_WINDOW = timedelta(days=2)
"""Windows at most this long are reported per hour; longer ones per day."""

MAX_WINDOW = timedelta(days=3660)
"""The longest window (ten years of days: the rates table has one row per day)."""
WINDOW_RULE = (
    "a duration back from now (30m, 24h, 7d, 2w: a whole number and m, h, d or w) or an ISO "
    "date or time (2026-05-01, 2026-05-01T08:00, 2026-05-01T08:00+08:00; UTC when no offset)"
)
"""What ``since`` and ``until`` accept as text (the ``--since`` and ``--until`` options too)."""

_DURATION = re.compile(r"(\d{1,7})([mhdw])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
Period = Literal["hour", "day"]


@dataclass(frozen=True)
class ReportWindow:
    """The time a report covers: queries asked at or after ``since`` and before ``until``
    (both UTC), counted per ``period`` (``"hour"`` or ``"day"``, periods start on the hour or
    at midnight UTC)."""

    since: datetime
    until: datetime
    period: Period

    @property
    def step(self) -> timedelta:
        """The length of one period."""
        return timedelta(hours=1) if self.period == "hour" else timedelta(days=1)

    def bucket(self, moment: datetime) -> datetime:
        """The start of the period ``moment`` falls in."""
        moment = moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
        return moment if self.period == "hour" else moment.replace(hour=0)

    def starts(self) -> list[datetime]:
        """The start of every period of the window, oldest first (empty ones included)."""
        starts, start = [], self.bucket(self.since)
        while start < self.until:
            starts.append(start)
            start += self.step
        return starts

    def describe(self) -> str:
        """``2026-05-01 08:00 → 2026-05-08 08:00 UTC (7 days, per day)``."""
        length = self.until - self.since
        days, rest = divmod(length.total_seconds(), 86_400)
        span = f"{days:g} days" if rest == 0 else f"{length.total_seconds() / 3600:.4g} hours"
        return (
            f"{self.since:%Y-%m-%d %H:%M} → {self.until:%Y-%m-%d %H:%M} UTC "
            f"({span}, per {self.period})"
        )


def report_window(
    since: datetime | timedelta | str,
    until: datetime | timedelta | str | None = None,
    *,
    now: datetime | None = None,
) -> ReportWindow:
    """The window of a report.

    Args:
        since: its start: an aware datetime, a timedelta back from ``now``, or text
            (:data:`WINDOW_RULE`: ``"7d"``, ``"24h"``, ``"2026-05-01"``).
        until: its end, in the same forms (default: ``now``).
        now: the present (default: the clock), for durations.

    Raises:
        WalletFAQError: a time that is not one of those forms, a naive datetime, a start not
            before the end, or a window longer than :data:`MAX_WINDOW`.
    """
    now = datetime.now(timezone.utc) if now is None else _aware(now, "now")
    start = _moment(since, "since", now)
    end = now if until is None else _moment(until, "until", now)
    if start >= end:
        raise WalletFAQError(
            f"the window is empty: since {start:%Y-%m-%d %H:%M:%S} UTC is not before until "
            f"{end:%Y-%m-%d %H:%M:%S} UTC; pass an earlier since or a later until"
        )
    if end - start > MAX_WINDOW:
        raise WalletFAQError(
            f"the window is {(end - start).days:,} days; a report covers at most "
            f"{MAX_WINDOW.days:,} days: pass a later since"
        )
    return ReportWindow(start, end, "hour" if end - start <= HOURLY_WINDOW else "day")


def _moment(value: object, what: str, now: datetime) -> datetime:
    if isinstance(value, datetime):
        return _aware(value, what)
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise WalletFAQError(f"{what} {value} must be a positive duration back from now")
        return _back(now, value, what)
    if not isinstance(value, str):
        raise WalletFAQError(
            f"{what} must be a datetime, a timedelta or text ({WINDOW_RULE}); "
            f"got {type(value).__name__}"
        )
    text = value.strip()
    duration = _DURATION.fullmatch(text)
    if duration is not None:
        amount = int(duration.group(1))
        if amount == 0:
            raise WalletFAQError(f"{what} {value!r} is no time at all; use e.g. 7d or 24h")
        return _back(now, timedelta(**{_UNITS[duration.group(2)]: amount}), what)
    try:
        if _DATE.fullmatch(text):
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
        elif _DATETIME.fullmatch(text):
            parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        else:
            raise ValueError(text)
    except ValueError:
        shown = ascii(value if len(value) <= 60 else value[:57] + "...")
        raise WalletFAQError(f"{what} {shown} is not a time: use {WINDOW_RULE}") from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else _aware(parsed, what)


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise WalletFAQError(
            f"{what} {value.isoformat()} has no time zone; pass an aware datetime "
            "(e.g. datetime(2026, 5, 1, tzinfo=timezone.utc))"
        )
    return value.astimezone(timezone.utc)


def _back(now: datetime, length: timedelta, what: str) -> datetime:
    if length > MAX_WINDOW:
        raise WalletFAQError(
            f"{what} goes back {length.days:,} days; a report covers at most "
            f"{MAX_WINDOW.days:,} days"
        )
    return now - length
