"""`dbt build` of dbt_project/ on a small hand-made raw world, on DuckDB and on PostgreSQL.

The same project, the same data and the same hand-computed expectations on both engines
(see dbt_world.py). dbt writes its target/ and logs/ into the test's tmp dir.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dbt_world as w
import pytest
import yaml

from meterline.config import WarehouseTarget, parse_db_url
from meterline.errors import InvoiceError
from meterline.ledger import void_invoice
from meterline.warehouse import connect

ROOT = Path(__file__).resolve().parents[2]
PROJECT_DIR = ROOT / "dbt_project"

Query = Callable[[str], list[tuple[Any, ...]]]


def run_dbt_build(tmp_path: Path, output: dict[str, Any], unit_tests: bool = True) -> None:
    from dbt.cli.main import dbtRunner

    profiles_dir = tmp_path / "profiles"
    profiles_dir.mkdir()
    profile = {"meterline": {"target": "test", "outputs": {"test": output}}}
    (profiles_dir / "profiles.yml").write_text(yaml.safe_dump(profile))
    args = [
        "build",
        "--project-dir", str(PROJECT_DIR),
        "--profiles-dir", str(profiles_dir),
        "--target-path", str(tmp_path / "target"),
        "--log-path", str(tmp_path / "logs"),
        "--no-use-colors",
        *([] if unit_tests else ["--exclude-resource-type", "unit_test"]),
    ]  # fmt: skip
    result = dbtRunner().invoke(args)
    failures = []
    if result.result is not None and hasattr(result.result, "results"):
        failures = [
            f"{r.node.unique_id}: {r.status} {r.message}"
            for r in result.result.results
            if str(r.status) not in ("success", "pass", "skipped")
        ]
    assert result.success, f"dbt build failed: {result.exception} {failures}"


def assert_marts(q: Query) -> None:
    # --- billing ------------------------------------------------------------------------------
    usage = {
        (r[0], r[1], r[2]): tuple(r[3:])
        for r in q(
            "select account_id, category, period, metered_quantity, included_quantity, "
            "billable_quantity, amount_decimal, amount_minor, is_priced from marts.fct_billable_usage"
        )
    }
    assert usage == w.EXPECTED_BILLABLE_USAGE

    # spike protection: held units are reported, not billed, until a release (docs/pricing.md)
    spikes = {
        (r[0], r[1], r[2]): (r[3], r[4])
        for r in q(
            "select account_id, category, period, spike_quantity, held_quantity "
            "from marts.fct_billable_usage"
        )
    }
    assert spikes == {key: w.EXPECTED_SPIKE_HELD.get(key, (0, 0)) for key in w.EXPECTED_BILLABLE_USAGE}
    spike_days = {
        r[0]: tuple(r[1:])
        for r in q(
            "select usage_day, quantity, baseline_sum, allowed_quantity, spike_quantity, "
            "is_released, held_quantity from intermediate.int_usage_days "
            "where account_id = 'acc_a' and category = 'replay'"
        )
    }
    assert spike_days == w.EXPECTED_SPIKE_DAYS

    lines = {
        r[0]: tuple(r[1:])
        for r in q(
            "select invoice_line_id, account_id, period, category, currency, quantity, "
            "amount_minor, is_period_locked, state from marts.fct_invoice_lines"
        )
    }
    assert lines == w.EXPECTED_INVOICE_LINES

    invoices = {
        r[0]: tuple(r[1:])
        for r in q(
            "select invoice_id, account_id, period, currency, total_minor, line_count, state, "
            "period_start, period_end from marts.fct_invoices"
        )
    }
    assert invoices == w.EXPECTED_INVOICES

    quarantine = sorted(
        q(
            "select reason, account_id, category, day, quantity, _batch_id from marts.fct_quarantine"
        ),
        key=lambda r: r[0],
    )
    assert quarantine == w.EXPECTED_QUARANTINE
    assert {r[0] for r in q("select distinct source from marts.fct_quarantine")} == {"metering", "billing"}

    accounts = {
        r[0]: tuple(r[1:])
        for r in q(
            "select account_id, currency, billing_anchor_day, stripe_customer_id, current_plan_id "
            "from marts.dim_accounts"
        )
    }
    assert accounts == w.EXPECTED_ACCOUNTS
    prices = sorted(r[0] for r in q("select price_id from marts.dim_prices"))
    assert prices == w.EXPECTED_PRICE_IDS

    # credits and commitments reach staging as loaded (one row per id per batch), money integer
    credits = sorted(q(
        "select credit_id, account_id, currency, amount_minor, credit_reason, _batch_id "
        "from staging.stg_billing__credits"
    ))
    assert credits == sorted((r[0], r[1], r[2], r[3], r[6], r[7]) for r in w.CREDITS)
    assert all(isinstance(r[3], int) for r in credits)
    commitments = sorted(q(
        "select commitment_id, account_id, currency, minimum_minor, starts_on, ends_on, _batch_id "
        "from staging.stg_billing__commitments"
    ))
    assert [(r[0], r[3], str(r[4]), str(r[5]), r[6]) for r in commitments] == sorted(
        (r[0], r[3], r[4], r[5], r[6]) for r in w.COMMITMENTS)

    # Stripe subscriptions, disputes, credit notes and events reach staging as loaded (every
    # version, every batch): money stays integer minor units, times are timestamps
    assert_stripe_staging(q)

    # --- reconciliation -----------------------------------------------------------------------
    daily = {
        (r[0], r[1], r[2]): tuple(r[3:])
        for r in q(
            "select account_id, category, day, metering_quantity, billing_quantity, "
            "billing_rows_at_latest, abs_diff, status from marts.rec_usage_daily"
        )
    }
    assert daily == w.EXPECTED_USAGE_DAILY

    totals = {
        (r[0], r[1]): tuple(r[2:])
        for r in q(
            "select account_id, period, computed_total_minor, stripe_total_minor, "
            "stripe_invoice_count, status from marts.rec_invoice_totals"
        )
    }
    assert totals == w.EXPECTED_INVOICE_TOTALS

    rec_lines = {
        (r[0], r[1], r[2]): tuple(r[3:])
        for r in q(
            "select account_id, period, category, computed_quantity, stripe_quantity, "
            "computed_amount_minor, stripe_amount_minor, status from marts.rec_invoice_lines"
        )
    }
    assert rec_lines == w.EXPECTED_INVOICE_LINES_REC

    payments = {
        r[0]: tuple(r[1:])
        for r in q(
            "select object_id, object_type, related_object_id, status from marts.rec_payments"
        )
    }
    assert payments == w.EXPECTED_PAYMENTS

    issued = {
        (r[0], r[1], r[2]): tuple(r[3:])
        for r in q(
            "select account_id, period, category, issued_quantity, current_quantity, "
            "issued_amount_minor, current_amount_minor, status from marts.rec_issued_vs_current"
        )
    }
    assert issued == w.EXPECTED_ISSUED_VS_CURRENT

    findings = q(
        "select check_name, status, account_id, category, period, day, object_id, reason, detail "
        "from marts.rec_findings"
    )
    original = ("usage_daily", "invoice_totals", "invoice_lines", "payments", "issued_vs_current", "quarantine")
    assert sorted((tuple(r[:8]) for r in findings if r[0] in original), key=repr) == w.EXPECTED_FINDINGS
    assert sorted((tuple(r[:8]) for r in findings if r[0] == "balance_transactions"), key=repr) \
        == w.EXPECTED_BALANCE_FINDINGS
    assert sorted((tuple(r[:8]) for r in findings if r[0] == "completeness"), key=repr) \
        == w.expected_completeness_findings()
    # row counts: what the batch ledger says was loaded (BATCH_LEDGER_ROWS: metering 1 + 14 + 2,
    # the others 0) against the rows each source's raw tables hold
    raw = {src: sum(q(f'select count(*) from "raw"."{t}"')[0][0] for t in tables)
           for src, tables in (("metering", ["metering_usage_hourly"]),
                               ("billing", [t for t in w.all_raw_tables() if t.startswith("billing_")]),
                               ("stripe", [t for t in w.all_raw_tables() if t.startswith("stripe_")]))}
    ledger = {"metering": 17, "billing": 0, "stripe": 0}
    assert sorted(r[6] for r in findings if r[0] == "row_counts") == sorted(
        f"{src}|batch_ledger|raw" for src in ledger if ledger[src] != raw[src])
    # usage per period: every non-OK period row is reported by a finer finding here; freshness
    # holds (metering's newest hour 2024-03-02 05:00 ends 18 h before as_of)
    assert {r[0] for r in findings} <= {*original, "balance_transactions", "completeness", "row_counts"}
    assert all(r[8] for r in findings), "every finding carries a human detail"
    details = {(r[0], r[2], r[3], r[5]): r[8] for r in findings if r[0] in ("usage_daily", "quarantine")}
    for key, detail in w.EXPECTED_FINDING_DETAILS.items():
        assert details[key] == detail


def _text(value: Any) -> Any:
    """A timestamp as the world writes it ('YYYY-MM-DD HH:MM:SS'); anything else as is."""
    if isinstance(value, dt.datetime):
        assert value.tzinfo is None, "timestamps are naive UTC"
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


def assert_stripe_staging(q: Query) -> None:
    subs = q(
        "select subscription_id, subscription_status, currency, current_period_start_at, "
        "current_period_end_at, canceled_at, _batch_id from staging.stg_stripe__subscriptions"
    )
    assert all(isinstance(r[3], dt.datetime) and isinstance(r[4], dt.datetime) for r in subs)
    assert sorted(tuple(_text(v) for v in r) for r in subs) == w.EXPECTED_STG_STRIPE_SUBSCRIPTIONS

    disputes = q(
        "select dispute_id, charge_id, amount_minor, currency, dispute_status, dispute_reason, "
        "_batch_id from staging.stg_stripe__disputes"
    )
    assert all(type(r[2]) is int for r in disputes), "money is integer minor units"
    assert sorted(disputes) == w.EXPECTED_STG_STRIPE_DISPUTES

    notes = q(
        "select credit_note_id, invoice_id, amount_minor, currency, credit_note_status, "
        "credit_note_type, _batch_id from staging.stg_stripe__credit_notes"
    )
    assert all(type(r[2]) is int for r in notes), "money is integer minor units"
    assert sorted(notes) == w.EXPECTED_STG_STRIPE_CREDIT_NOTES

    events = q(
        "select event_id, event_type, object_type, object_id, created_at, _batch_id "
        "from staging.stg_stripe__events"
    )
    assert all(isinstance(r[4], dt.datetime) for r in events)
    assert sorted(tuple(_text(v) for v in r) for r in events) == w.EXPECTED_STG_STRIPE_EVENTS

    latest_disputes = q(
        "select dispute_id, dispute_status, _batch_id from intermediate.int_stripe_disputes_latest"
    )
    assert sorted(latest_disputes) == w.EXPECTED_INT_STRIPE_DISPUTES_LATEST
    latest_notes = q(
        "select credit_note_id, credit_note_status, _batch_id "
        "from intermediate.int_stripe_credit_notes_latest"
    )
    assert sorted(latest_notes) == w.EXPECTED_INT_STRIPE_CREDIT_NOTES_LATEST


def test_dbt_build_duckdb(tmp_path: Path) -> None:
    import duckdb

    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        for statement in w.world_sql():
            con.execute(statement)

    run_dbt_build(tmp_path, {"type": "duckdb", "path": str(db), "schema": "main", "threads": 1})

    with duckdb.connect(str(db)) as con:
        assert_marts(lambda sql: con.execute(sql).fetchall())


@pytest.mark.postgres
def test_dbt_build_postgres(tmp_path: Path, pg_url: str) -> None:
    """Same world, same expectations, on a fresh PostgreSQL database (conftest's pg_url)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    with psycopg.connect(pg_url, autocommit=True) as con:
        for statement in w.world_sql():
            con.execute(statement)

    info = conninfo_to_dict(pg_url)
    output = {
        "type": "postgres",
        "host": info.get("host", "127.0.0.1"),
        "port": int(info.get("port", 5432)),
        "user": info.get("user", "postgres"),
        "password": info.get("password", ""),
        "dbname": info["dbname"],
        "schema": "public",
        "threads": 1,
    }
    run_dbt_build(tmp_path, output)

    with psycopg.connect(pg_url) as con:
        assert_marts(lambda sql: con.execute(sql).fetchall())


# ------------------------------------------------------------------------------ meterline void


def assert_void_state(q: Query, voided: bool) -> None:
    """The void variant of the world before (voided=False) or after the void and a rebuild."""
    lines = {
        r[0]: tuple(r[1:])
        for r in q(
            "select invoice_line_id, account_id, period, category, currency, quantity, "
            "amount_minor, is_period_locked, state from marts.fct_invoice_lines"
        )
    }
    assert lines == (w.EXPECTED_VOID_VARIANT_LINES_AFTER if voided else w.EXPECTED_VOID_VARIANT_LINES_BEFORE)

    changed = w.EXPECTED_VOID_VARIANT_INVOICES_AFTER if voided else w.EXPECTED_VOID_VARIANT_INVOICES_BEFORE
    invoices = {
        r[0]: tuple(r[1:])
        for r in q("select invoice_id, total_minor, line_count, state from marts.fct_invoices")
    }
    assert invoices == {k: changed.get(k, (v[3], v[4], v[5])) for k, v in w.EXPECTED_INVOICES.items()}

    adjustments = {
        (r[0], r[1], r[2]): tuple(r[3:])
        for r in q(
            "select account_id, service_period, line_key, target_period, category, quantity, "
            "amount_minor, adjustment_reason from intermediate.int_invoice_adjustments"
        )
    }
    assert adjustments == (w.EXPECTED_VOID_ADJUSTMENTS_AFTER if voided else w.EXPECTED_VOID_ADJUSTMENTS_BEFORE)

    drawdowns = {
        (r[0], r[1]): tuple(r[2:])
        for r in q(
            "select credit_id, period, balance_before, drawn_minor, balance_after "
            "from intermediate.int_credit_drawdowns"
        )
    }
    assert drawdowns == (w.EXPECTED_VOID_DRAWDOWNS_AFTER if voided else w.EXPECTED_VOID_DRAWDOWNS_BEFORE)

    # reconciliation compares Stripe with invoices somebody owes: a voided one is not among them
    computed = {r[0] for r in q("select computed_invoice_id from marts.rec_invoice_totals "
                                 "where computed_invoice_id is not null")}
    assert (w.VOID_INVOICE in computed) is (not voided)

    ledger = q("select invoice_id, voided_at, void_reason from staging.stg_ledger__issued_invoices")
    expected_void = (dt.datetime.fromisoformat(w.VOID_AT), w.VOID_REASON) if voided else (None, None)
    assert [(r[0], r[1], r[2]) for r in ledger] == [(w.VOID_INVOICE, *expected_void)]


def run_void_scenario(tmp_path: Path, output: dict[str, Any],
                      q: Callable[[], contextlib.AbstractContextManager[Query]],
                      target: WarehouseTarget) -> None:
    """Build the void variant, void acc_a's January invoice with `meterline.ledger.void_invoice`,
    build again: every number on both sides is hand-computed in dbt_world.py."""
    for phase in ("before", "after"):
        (tmp_path / phase).mkdir()
    # dbt's unit tests ran with the main build of this world (test_dbt_build_*): not again here
    run_dbt_build(tmp_path / "before", output, unit_tests=False)
    with q() as query:
        assert_void_state(query, voided=False)

    with connect(target) as conn:
        # a draft of the built marts is refused, nothing written
        with pytest.raises(InvoiceError, match="inv_acc_a_2024-02 is a draft .period 2024-02 is not closed."):
            void_invoice(conn, "inv_acc_a_2024-02", "wrong invoice")
        res = void_invoice(conn, w.VOID_INVOICE, w.VOID_REASON)
        assert (res["action"], res["voided_at"], res["void_reason"], res["total_minor"]) == (
            "voided", w.VOID_AT, w.VOID_REASON, 0)
        # repeated: a no-op that keeps the first void
        again = void_invoice(conn, w.VOID_INVOICE, "second thoughts")
        assert (again["action"], again["voided_at"], again["void_reason"]) == (
            "already_void", w.VOID_AT, w.VOID_REASON)

    run_dbt_build(tmp_path / "after", output, unit_tests=False)
    with q() as query:
        assert_void_state(query, voided=True)


def test_void_duckdb(tmp_path: Path) -> None:
    import duckdb

    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        for statement in w.void_variant_sql():
            con.execute(statement)

    @contextlib.contextmanager
    def q() -> Iterator[Query]:
        with duckdb.connect(str(db)) as con:
            yield lambda sql: con.execute(sql).fetchall()

    output = {"type": "duckdb", "path": str(db), "schema": "main", "threads": 1}
    run_void_scenario(tmp_path, output, q, parse_db_url(f"duckdb:///{db}", tmp_path, "warehouse"))


@pytest.mark.postgres
def test_void_postgres(tmp_path: Path, pg_url: str) -> None:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    with psycopg.connect(pg_url, autocommit=True) as con:
        for statement in w.void_variant_sql():
            con.execute(statement)

    @contextlib.contextmanager
    def q() -> Iterator[Query]:
        with psycopg.connect(pg_url) as con:
            yield lambda sql: con.execute(sql).fetchall()

    info = conninfo_to_dict(pg_url)
    output = {
        "type": "postgres",
        "host": info.get("host", "127.0.0.1"),
        "port": int(info.get("port", 5432)),
        "user": info.get("user", "postgres"),
        "password": info.get("password", ""),
        "dbname": info["dbname"],
        "schema": "public",
        "threads": 1,
    }
    run_void_scenario(tmp_path, output, q, parse_db_url(pg_url, tmp_path, "warehouse"))
