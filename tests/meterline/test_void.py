"""Voiding an issued invoice: the rules of meterline.ledger.void_invoice on a DuckDB warehouse,
and the `meterline void` command as a user runs it. What a void does to the marts is checked
on the hand-made dbt world (tests/dbt/test_dbt_build.py::test_void_*)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from conftest import run_cli

from ingest.load import ensure_raw
from meterline.config import parse_db_url
from meterline.errors import InvoiceError, MeterlineError
from meterline.ledger import void_invoice
from meterline.warehouse import Connection, connect

AS_OF = dt.datetime(2026, 11, 3)
EARLIER_VOID = dt.datetime(2026, 11, 2, 0, 0)


def _world(conn: Connection, metering: bool = True) -> None:
    """Two issued invoices (October, locked), one already void; a November draft in the marts."""
    ensure_raw(conn)
    if metering:
        for start, end, status in [(dt.datetime(2026, 11, 2), AS_OF, "loaded"),
                                   (AS_OF, dt.datetime(2026, 11, 4), "failed")]:
            conn.execute(
                "INSERT INTO raw.batch_ledger (batch_id, source, interval_start, interval_end, "
                "row_count, checksum, status, loaded_at) VALUES (?, 'metering', ?, ?, 0, 'x', ?, ?)",
                [f"m_{start:%Y%m%d}", start, end, status, end])
    conn.execute("INSERT INTO ledger.period_locks VALUES ('2026-10', ?, 'sha')", [dt.datetime(2026, 11, 1)])
    conn.execute(
        "INSERT INTO ledger.issued_invoices (invoice_id, account_id, period, currency, total_minor, "
        "line_count, version, content_hash, voided_at, void_reason) VALUES "
        "('inv_a_2026-10', 'a', '2026-10', 'USD', 1050, 2, 1, 'h1', NULL, NULL), "
        "('inv_b_2026-10', 'b', '2026-10', 'JPY', 500, 1, 3, 'h2', NULL, NULL), "
        "('inv_c_2026-10', 'c', '2026-10', 'USD', 70, 1, 1, 'h3', ?, 'duplicate of inv_c2')",
        [EARLIER_VOID])
    conn.execute("CREATE SCHEMA IF NOT EXISTS marts")
    conn.execute("CREATE TABLE marts.fct_invoices (invoice_id VARCHAR, period VARCHAR, state VARCHAR)")
    conn.execute("INSERT INTO marts.fct_invoices VALUES ('inv_a_2026-10', '2026-10', 'issued'), "
                 "('inv_a_2026-11', '2026-11', 'draft')")


def _ledger(conn: Connection) -> dict[str, tuple]:
    return {r[0]: tuple(r[1:]) for r in conn.fetchall(
        "SELECT invoice_id, total_minor, line_count, version, content_hash, voided_at, void_reason "
        "FROM ledger.issued_invoices")}


@pytest.fixture
def conn(tmp_path: Path):
    with connect(parse_db_url("duckdb:///wh.duckdb", tmp_path, "warehouse")) as c:
        _world(c)
        yield c


def test_void_sets_data_time_and_reason_on_that_invoice_only(conn: Connection) -> None:
    before = _ledger(conn)
    res = void_invoice(conn, " inv_a_2026-10 ", "  customer disputed the October usage  ")
    assert res == {
        "invoice_id": "inv_a_2026-10", "action": "voided", "account_id": "a", "period": "2026-10",
        "currency": "USD", "total_minor": 1050,
        # the end of the latest LOADED metering interval (the failed later batch does not count)
        "voided_at": "2026-11-03 00:00:00",
        "void_reason": "customer disputed the October usage",
    }
    after = _ledger(conn)
    assert after["inv_a_2026-10"] == (1050, 2, 1, "h1", AS_OF, "customer disputed the October usage")
    # nothing else moves: the issued amounts stay as issued, the other invoices untouched
    assert {k: v for k, v in after.items() if k != "inv_a_2026-10"} == {
        k: v for k, v in before.items() if k != "inv_a_2026-10"}


def test_void_at_an_explicit_time(conn: Connection) -> None:
    at = dt.datetime(2026, 11, 2, 12, 30)
    assert void_invoice(conn, "inv_b_2026-10", "wrong plan", at=at)["voided_at"] == "2026-11-02 12:30:00"
    assert _ledger(conn)["inv_b_2026-10"][4:] == (at, "wrong plan")


def test_voiding_a_void_invoice_is_a_reported_no_op(conn: Connection) -> None:
    before = _ledger(conn)
    res = void_invoice(conn, "inv_c_2026-10", "another reason")
    assert res["action"] == "already_void"
    # the original void is what is reported and kept
    assert (res["voided_at"], res["void_reason"]) == ("2026-11-02 00:00:00", "duplicate of inv_c2")
    assert _ledger(conn) == before
    # and a void made now is not moved by repeating it
    void_invoice(conn, "inv_a_2026-10", "first")
    again = void_invoice(conn, "inv_a_2026-10", "second", at=dt.datetime(2030, 1, 1))
    assert (again["action"], again["voided_at"], again["void_reason"]) == (
        "already_void", "2026-11-03 00:00:00", "first")


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_reason_is_required(conn: Connection, reason: str | None) -> None:
    before = _ledger(conn)
    with pytest.raises(InvoiceError, match=r"voiding inv_a_2026-10 needs a reason \(--reason TEXT\)"):
        void_invoice(conn, "inv_a_2026-10", reason)  # type: ignore[arg-type]
    assert _ledger(conn) == before


def test_a_draft_cannot_be_voided(conn: Connection) -> None:
    before = _ledger(conn)
    with pytest.raises(InvoiceError, match="invoice inv_a_2026-11 is a draft .period 2026-11 is not closed.: "
                                           "only an issued invoice can be voided"):
        void_invoice(conn, "inv_a_2026-11", "customer asked")
    assert _ledger(conn) == before


def test_an_unknown_invoice_is_an_error(conn: Connection) -> None:
    with pytest.raises(InvoiceError, match=r"no issued invoice inv_zz_2026-10 in the ledger"):
        void_invoice(conn, "inv_zz_2026-10", "typo")
    with pytest.raises(InvoiceError, match="say which invoice"):
        void_invoice(conn, "  ", "typo")


def test_unknown_without_marts_yet(tmp_path: Path) -> None:
    with connect(parse_db_url("duckdb:///fresh.duckdb", tmp_path, "warehouse")) as c:
        ensure_raw(c)
        with pytest.raises(InvoiceError, match="no issued invoice inv_a_2026-10"):
            void_invoice(c, "inv_a_2026-10", "x")


def test_no_loaded_metering_means_no_data_time(tmp_path: Path) -> None:
    with connect(parse_db_url("duckdb:///nometer.duckdb", tmp_path, "warehouse")) as c:
        _world(c, metering=False)
        before = _ledger(c)
        with pytest.raises(InvoiceError, match="no metering interval is loaded"):
            void_invoice(c, "inv_a_2026-10", "x")
        assert _ledger(c) == before


def test_a_duplicated_ledger_row_is_refused_and_rolled_back(conn: Connection) -> None:
    conn.execute("INSERT INTO ledger.issued_invoices (invoice_id, account_id, period, currency, total_minor) "
                 "VALUES ('inv_b_2026-10', 'b', '2026-10', 'JPY', 500)")
    before = _ledger(conn)
    with pytest.raises(InvoiceError, match="the ledger holds 2 issued invoices with id inv_b_2026-10; nothing voided"):
        void_invoice(conn, "inv_b_2026-10", "x")
    assert conn.fetchall("SELECT count(*) FROM ledger.issued_invoices WHERE voided_at IS NOT NULL") == [(1,)]
    assert _ledger(conn) == before


def test_invoice_errors_are_user_errors() -> None:
    assert issubclass(InvoiceError, MeterlineError) and InvoiceError.exit_code == 2


# ----------------------------------------------------------------------------------- the CLI


def _last_error_line(res) -> str:
    assert "Traceback" not in res.stderr
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert lines and lines[-1].startswith("meterline: error: "), res.stderr
    return lines[-1]


def test_cli_void(tmp_path: Path) -> None:
    with connect(parse_db_url("duckdb:///wh.duckdb", tmp_path, "warehouse")) as c:
        _world(c)
    env = {"METERLINE_WAREHOUSE": f"duckdb:///{tmp_path / 'wh.duckdb'}"}

    res = run_cli("void", "--invoice", "inv_a_2026-10", "--reason", "customer disputed", cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == (
        "voided inv_a_2026-10 (a 2026-10, total 1050 USD minor units) as of 2026-11-03 00:00:00: "
        "customer disputed")

    res = run_cli("void", "--invoice", "inv_a_2026-10", "--reason", "again", "--json", cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {
        "invoice_id": "inv_a_2026-10", "action": "already_void", "account_id": "a", "period": "2026-10",
        "currency": "USD", "total_minor": 1050, "voided_at": "2026-11-03 00:00:00",
        "void_reason": "customer disputed"}

    for args, needle in [
        (["--invoice", "inv_a_2026-11", "--reason", "x"], "is a draft (period 2026-11 is not closed)"),
        (["--invoice", "inv_nope", "--reason", "x"], "no issued invoice inv_nope in the ledger"),
        (["--invoice", "inv_b_2026-10", "--reason", " "], "needs a reason (--reason TEXT)"),
    ]:
        res = run_cli("void", *args, cwd=tmp_path, env=env)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert needle in _last_error_line(res)
    # a missing option is click's usage error, also exit 2
    res = run_cli("void", "--invoice", "inv_b_2026-10", cwd=tmp_path, env=env)
    assert res.returncode == 2 and "--reason" in res.stderr and "Traceback" not in res.stderr

    with connect(parse_db_url("duckdb:///wh.duckdb", tmp_path, "warehouse")) as c:
        ledger = _ledger(c)
    assert ledger["inv_a_2026-10"][4:] == (AS_OF, "customer disputed")
    assert ledger["inv_b_2026-10"][4:] == (None, None)
