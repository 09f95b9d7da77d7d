"""Property tests (hypothesis) of rating, through dbt on DuckDB.

Each example is one small raw world: a graduated price book drawn by hypothesis and, for each
drawn usage total Q, three accounts on that plan: all Q in one hour ("one"), the same Q split
across random hours and days of the month ("split"), and Q plus more ("more"). One dbt build
per example rates them all; then, for every Q:

- splitting the same usage across days or hours never changes the period amount;
- more usage never costs less under graduated pricing;
- the amount equals an independent Python rating (exact Decimal, half-even once);
- every invoice's total is the sum of its lines.
"""

from __future__ import annotations

import tempfile
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import dbt_world as w
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
PROJECT_DIR = ROOT / "dbt_project"
N = None
M1 = ("m1", "2024-02-01 00:30:00", "metering")
B1 = ("b1", "2024-02-01 00:40:00", "billing")
HOURS = 31 * 24  # January 2024

prices = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("5"), places=6)


@st.composite
def price_books(draw: Any) -> tuple[int, list[tuple[int, int | None, Decimal]]]:
    included = draw(st.integers(0, 5000))
    edges = sorted(draw(st.sets(st.integers(1, 2_000_000), max_size=3)))
    starts = [0, *edges]
    tiers = [
        (start, starts[i + 1] if i + 1 < len(starts) else None, draw(prices))
        for i, start in enumerate(starts)
    ]
    return included, tiers


@st.composite
def scenarios(draw: Any) -> list[tuple[int, list[tuple[int, int]], int]]:
    """[(Q, [(hour index, part)] summing to Q, extra > 0)]"""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        total = draw(st.integers(0, 3_000_000))
        hours = sorted(draw(st.sets(st.integers(0, HOURS - 1), min_size=1, max_size=6)))
        cuts = sorted(draw(st.lists(st.integers(0, total), min_size=len(hours) - 1,
                                    max_size=len(hours) - 1)))
        bounds = [0, *cuts, total]
        parts = [(h, bounds[i + 1] - bounds[i]) for i, h in enumerate(hours)]
        out.append((total, [p for p in parts if p[1] > 0], draw(st.integers(1, 500_000))))
    return out


def reference_minor(quantity: int, included: int, tiers: list[tuple[int, int | None, Decimal]]) -> int:
    billable = max(0, quantity - included)
    total = Decimal(0)
    for start, end, price in tiers:
        upper = billable if end is None else min(billable, end)
        total += max(0, upper - start) * price
    return int((total * 100).to_integral_value(rounding=ROUND_HALF_EVEN))


def world(included: int, tiers: list, cases: list) -> tuple[list[str], dict[str, int]]:
    accounts, subs, usage = [], [], []
    quantities: dict[str, int] = {}

    def add(account: str, rows: list[tuple[int, int]]) -> None:
        accounts.append((account, account, "USD", 1, N, "2023-01-01 00:00:00", *B1))
        subs.append((f"s_{account}", account, "p", "2024-01-01 00:00:00", N, N, *B1))
        for h, qty in rows:
            day, hh = divmod(h, 24)
            ts = f"2024-01-{day + 1:02d} {hh:02d}:00:00"
            usage.append((ts, account, "prj", "error", "accepted", qty, ts, *M1))
        quantities[account] = sum(q for _, q in rows)

    for i, (total, parts, extra) in enumerate(cases):
        add(f"a{i}_one", [(100, total)] if total else [])
        add(f"a{i}_split", parts)
        add(f"a{i}_more", [(100, total + extra)])
    book = [
        (f"pr_{k}", "p", "error", "2024-01-01", N, "graduated", included, N, N, N, N, N, s, e, price, *B1)
        for k, (s, e, price) in enumerate(tiers)
    ]
    data = [
        ("raw", "batch_ledger", [
            ("m1", "metering", "2024-01-01", "2024-02-01", len(usage), "x", "loaded", "2024-02-01 00:31:00"),
            ("b1", "billing", "2024-01-31", "2024-02-01", 0, "x", "loaded", "2024-02-01 00:41:00"),
        ]),
        ("raw", "billing_accounts", accounts),
        ("raw", "billing_plans", [("p", "Plan", "USD", 0, *B1)]),
        ("raw", "billing_subscriptions", subs),
        ("raw", "billing_price_books", book),
        ("raw", "metering_usage_hourly", usage),
    ]
    statements = w.create_tables_sql()
    for schema, table, rows in data:
        if rows:
            statements.append(w.insert_sql(schema, table, w._columns(schema, table), rows))
    return statements, quantities


def build(tmp: Path, statements: list[str]) -> Any:
    import duckdb
    from dbt.cli.main import dbtRunner

    db = tmp / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        for sql in statements:
            con.execute(sql)
    (tmp / "profiles").mkdir()
    profile = {"meterline": {"target": "t", "outputs": {"t": {
        "type": "duckdb", "path": str(db), "schema": "main", "threads": 1}}}}
    (tmp / "profiles" / "profiles.yml").write_text(yaml.safe_dump(profile))
    result = dbtRunner().invoke([
        # seeds and models only: the project's data tests run in test_dbt_build.py
        "build", "--select", "+fct_invoices", "+fct_billable_usage",
        "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test",
        "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(tmp / "profiles"),
        "--target-path", str(tmp / "target"), "--log-path", str(tmp / "logs"), "--quiet",
    ])
    assert result.success, f"dbt build failed: {result.exception}"
    return duckdb.connect(str(db))


@pytest.mark.slow
@settings(max_examples=3, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],  # a dbt build per example: no shrinking
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(book=price_books(), cases=scenarios())
def test_rating_properties(book: tuple[int, list], cases: list) -> None:
    included, tiers = book
    statements, quantities = world(included, tiers, cases)
    with tempfile.TemporaryDirectory() as tmp:
        con = build(Path(tmp), statements)
        try:
            amounts = dict(con.execute(
                "select account_id, amount_minor from marts.fct_billable_usage "
                "where category = 'error' and period = '2024-01'").fetchall())
            invoices = con.execute(
                "select i.invoice_id, i.total_minor, sum(l.amount_minor) from marts.fct_invoices i "
                "join marts.fct_invoice_lines l on l.invoice_id = i.invoice_id "
                "group by i.invoice_id, i.total_minor").fetchall()
        finally:
            con.close()
    for i, (total, _, _) in enumerate(cases):
        one, split, more = (amounts.get(f"a{i}_{k}", 0) for k in ("one", "split", "more"))
        assert quantities[f"a{i}_split"] == total
        assert split == one, f"split usage {total} billed {split}, in one hour {one}"
        assert more >= one, f"more usage billed less: {more} < {one}"
        assert one == reference_minor(total, included, tiers)
        assert more == reference_minor(quantities[f"a{i}_more"], included, tiers)
    assert invoices and all(t == s for _, t, s in invoices)
