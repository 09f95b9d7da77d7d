"""The demo's plan: nights in order, each full month closed once the next night follows it."""

from __future__ import annotations

import datetime as dt

import pytest

from meterline.runner import month_plan


@pytest.mark.parametrize(
    ("first", "last", "closes"),
    [
        ("2026-10-01", "2026-11-03", ["2026-10"]),
        ("2026-10-01", "2026-10-31", []),           # nothing after the month: no close yet
        ("2026-10-15", "2026-12-02", ["2026-11"]),  # a partial first month is never closed
        ("2026-10-01", "2027-01-01", ["2026-10", "2026-11", "2026-12"]),
    ],
)
def test_month_plan(first: str, last: str, closes: list[str]) -> None:
    f, la = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    plan = month_plan(f, la)
    days = [d for run, _ in plan for d in run]
    assert days == [f + dt.timedelta(days=i) for i in range((la - f).days + 1)]
    assert [p for _, p in plan if p] == closes
    assert plan[-1][1] is None  # never ends on a close: a night always follows it
