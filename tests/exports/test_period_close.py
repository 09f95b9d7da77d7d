"""Period close on the sample world (DuckDB), end to end: a locked period never changes.

One `meterline demo` (4 accounts; nights 2026-10-01 .. 2026-11-03; 2026-10 closed: the session's
`demo_world`) is shared, and every test that changes anything works on its own copy of it. (That
two independent demos write byte-identical exports is the golden-file check of tests/test_demo.py.)

  * late usage for a locked October hour: the locked journal, revenue and every export of
    2026-10 stay byte-identical (also through a second close); the difference is a balanced
    catch-up entry in 2026-11 equal to the invoice adjustment on the November draft, to the
    restatement, and to an independent computation from the price book;
  * reopen needs a reason, leaves an audit row and unfreezes the accounting, not the invoices;
    the period closes again ("reclosed") without issuing anything twice;
  * bad input (a currency without an exponent, a product without a GL mapping) stops the close
    before anything is written: no ledger row, no file, no temporary folder;
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from pathlib import Path

import duckdb
import pytest
from conftest import DEMO_ACCOUNTS, ROOT, copy_world, demo_env
from invariants import check_all

from exports.close import close_period, is_locked, reopen_period
from meterline.config import load_config
from meterline.errors import ExportError
from meterline.warehouse import Connection, connect

pytestmark = pytest.mark.slow

PERIOD = "2026-10"
NEXT_PERIOD = "2026-11"
ACCOUNTS = DEMO_ACCOUNTS
RERUN_NIGHT = "2026-11-03"
# an October hour inside the late window of the 2026-11-03 night (the metering pull of night D
# covers hours from D - 3 days), written during that night's interval
LATE_HOUR = dt.datetime(2026, 10, 31, 22)
LATE_WRITTEN = dt.datetime(2026, 11, 3, 9, 30)
LATE_UNITS = 123_457


def _env() -> dict[str, str]:
    return demo_env()


def _cli(directory: Path, *args: str, dbt_project: Path | None = None) -> subprocess.CompletedProcess:
    """`meterline ARGS` run in `directory` as a user runs it. With `dbt_project`, against that
    copy of the dbt project (the seeds live in the project: a test's own seeds need a copy)."""
    if dbt_project is None:
        cmd = [sys.executable, "-m", "meterline.cli", *args]
    else:
        code = ("import sys; from pathlib import Path; import meterline.dbt; "
                f"meterline.dbt.DBT_PROJECT_DIR = Path({str(dbt_project)!r}); "
                "from meterline.cli import main; sys.exit(main(sys.argv[1:]))")
        cmd = [sys.executable, "-c", code, *args]
    return subprocess.run(cmd, cwd=directory, env=_env(), capture_output=True, text=True, timeout=900)


def _one_line_error(res: subprocess.CompletedProcess, code: int, *needles: str,
                    alone: bool = False) -> str:
    """The exit code and the one error line (the last line on stderr, after any progress
    lines; with `alone`, the only one), never a traceback."""
    assert res.returncode == code, (res.returncode, res.stderr[-3000:])
    lines = res.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("meterline: error: ")]
    assert errors == lines[-1:] and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert len(lines) == 1 or not alone, res.stderr[-3000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


# ----------------------------------------------------------------------------- the demo worlds


@pytest.fixture(scope="module")
def world(demo_world: Path) -> Path:
    """The shared demo folder (tests/conftest.py): read it, or copy it (`_copy`) first."""
    return demo_world


def _copy(world: Path, tmp_path: Path) -> Path:
    return copy_world(world, tmp_path)


@contextlib.contextmanager
def _warehouse(directory: Path) -> Iterator[Connection]:
    cfg = load_config(directory / "meterline.toml", env=_env())
    with connect(cfg.warehouse) as conn:
        yield conn


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every folder (None) and file (its bytes) under `folder`, hidden ones included."""
    out: dict[str, bytes | None] = {}
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        for d in dirs:
            out[f"{rel / d}/"] = None
        for f in files:
            out[str(rel / f)] = (Path(root) / f).read_bytes()
    return dict(sorted(out.items()))


def _digest(rows: list[tuple]) -> str:
    body = "\n".join(sorted(repr(r) for r in rows))
    return f"{len(rows)}:{hashlib.sha256(body.encode()).hexdigest()}"


def _ledger_digest(conn: Connection) -> dict[str, str]:
    return {t: _digest(conn.fetchall(f'SELECT * FROM "ledger"."{t}"'))
            for _, t in conn.tables(["ledger"])}


def _frozen_state(conn: Connection) -> dict[str, str]:
    """What the close of PERIOD froze, as the marts and the ledger show it."""
    queries = {
        "marts.fct_journal_lines": "SELECT * FROM marts.fct_journal_lines WHERE accounting_period = ?",
        "marts.fct_revenue_daily": "SELECT * FROM marts.fct_revenue_daily WHERE accounting_period = ?",
        "ledger.locked_journal_lines":
            "SELECT * FROM ledger.locked_journal_lines WHERE accounting_period = ?",
        "ledger.locked_revenue_daily":
            "SELECT * FROM ledger.locked_revenue_daily WHERE accounting_period = ?",
        "ledger.issued_invoices": "SELECT * FROM ledger.issued_invoices WHERE period = ?",
        "ledger.issued_invoice_lines": "SELECT * FROM ledger.issued_invoice_lines WHERE period = ?",
    }
    return {name: _digest(conn.fetchall(sql, [PERIOD])) for name, sql in queries.items()}


def _audit(conn: Connection) -> list[tuple]:
    return conn.fetchall("SELECT seq, period, action, reason, exports_manifest_sha256 "
                         "FROM ledger.period_audit ORDER BY seq")


# ----------------------------------------------------------------------------- 1. late data


@dataclass(frozen=True)
class LateUsage:
    account_id: str
    currency: str
    category: str
    project_id: str
    quantity: int  # the latest version's cumulative quantity of the key at LATE_HOUR
    updated_at: dt.datetime
    issued_quantity: int  # what the issued October invoice billed for the category
    issued_minor: int
    included: int
    tiers: tuple[tuple[int, int | None, Decimal], ...]


def _currency_exponents() -> dict[str, int]:
    with (ROOT / "dbt_project" / "seeds" / "currencies.csv").open(newline="") as f:
        return {r["currency"]: int(r["minor_unit_exponent"]) for r in csv.DictReader(f)}


def _price_minor(quantity: int, late: LateUsage, exponent: int) -> int:
    """Graduated tiers over the units beyond the included volume (docs/sources.md), exact, then
    rounded once to minor units, half-even: computed here from the billing source's price book,
    not from the dbt models."""
    billable = max(0, quantity - late.included)
    with localcontext() as ctx:
        ctx.prec = 100
        total = Decimal(0)
        for start, end, unit_price in late.tiers:
            upper = billable if end is None else min(billable, end)
            total += max(0, upper - start) * unit_price
        return int(total.scaleb(exponent).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _pick_late_usage(directory: Path, conn: Connection, exponents: dict[str, int]) -> LateUsage:
    """An account and category whose October amount follows from the price book alone: one
    subscription the whole month, no discount, commitment or credit to move the difference,
    graduated prices without spend cap, reserved volume, packages or spike protection; and
    nothing restated for it yet, so the only difference after the rerun is ours."""
    bill = duckdb.connect(str(directory / "sources" / "billing.duckdb"), read_only=True)
    meter = duckdb.connect(str(directory / "sources" / "metering.duckdb"), read_only=True)
    start, end = dt.datetime(2026, 10, 1), dt.datetime(2026, 11, 1)
    try:
        restated = {r[0] for r in conn.fetchall(
            "SELECT account_id FROM marts.fct_locked_period_restatements "
            "WHERE locked_period = ? AND difference_minor <> 0", [PERIOD])}
        for account_id, currency in bill.execute(
                "SELECT account_id, currency FROM accounts ORDER BY account_id").fetchall():
            if account_id in restated:
                continue
            subs = bill.execute(
                "SELECT plan_id, started_at, ended_at, rounding_mode FROM subscriptions "
                "WHERE account_id = ? AND started_at < ? AND (ended_at IS NULL OR ended_at > ?)",
                [account_id, end, start]).fetchall()
            if len(subs) != 1:
                continue
            plan_id, started_at, ended_at, rounding_mode = subs[0]
            if started_at > start or (ended_at is not None and ended_at < end) or \
                    rounding_mode not in (None, "half_even"):
                continue
            contracts = sum(bill.execute(f"SELECT count(*) FROM {t} WHERE account_id = ?",
                                         [account_id]).fetchone()[0]
                            for t in ("discounts", "commitments", "credits"))
            if contracts:
                continue
            issued = conn.fetchall(
                "SELECT line_type, category, quantity, amount_minor FROM ledger.issued_invoice_lines "
                "WHERE account_id = ? AND period = ? ORDER BY category", [account_id, PERIOD])
            if {r[0] for r in issued} - {"usage", "flat_fee"}:
                continue
            for _, category, issued_quantity, issued_minor in (r for r in issued if r[0] == "usage"):
                prices = bill.execute(
                    "SELECT pricing_model, included_quantity, reserved_quantity, spend_cap_minor, "
                    "package_size, spike_multiplier, tier_start, tier_end, unit_price_decimal "
                    "FROM price_books WHERE plan_id = ? AND category = ? AND effective_from <= ? "
                    "AND (effective_to IS NULL OR effective_to >= ?) ORDER BY tier_start",
                    [plan_id, category, start.date(), end.date()]).fetchall()
                if not prices or any(p[0] != "graduated" or any(p[2:6]) for p in prices):
                    continue
                if len({p[1] for p in prices}) != 1 or int(issued_quantity) <= prices[0][1]:
                    continue
                row = meter.execute(
                    "SELECT project_id, quantity, updated_at FROM usage_hourly WHERE hour_start = ? "
                    "AND account_id = ? AND category = ? AND outcome = 'accepted' "
                    "ORDER BY updated_at DESC, project_id LIMIT 1",
                    [LATE_HOUR, account_id, category]).fetchone()
                if row is None:
                    continue
                late = LateUsage(
                    account_id=account_id, currency=currency, category=category,
                    project_id=row[0], quantity=int(row[1]), updated_at=row[2],
                    issued_quantity=int(issued_quantity), issued_minor=int(issued_minor),
                    included=int(prices[0][1]),
                    tiers=tuple((int(p[6]), None if p[7] is None else int(p[7]), Decimal(p[8]))
                                for p in prices))
                # a category whose unit price is so small that our units round to nothing
                # (bytes) would show no difference at all
                exponent = exponents[currency]
                if _price_minor(late.issued_quantity + LATE_UNITS, late, exponent) > late.issued_minor:
                    return late
    finally:
        bill.close()
        meter.close()
    pytest.fail("the sample world has no account and category for the late-usage test")


def test_late_usage_after_close_is_a_catchup_and_the_locked_period_stays_identical(
        world: Path, tmp_path: Path) -> None:
    d = _copy(world, tmp_path)
    exports = d / "exports"
    files_before = _tree(exports)
    assert f"{PERIOD}/manifest.json" in files_before
    with _warehouse(d) as conn:
        frozen_before = _frozen_state(conn)
        late = _pick_late_usage(d, conn, _currency_exponents())
        assert conn.fetchone(
            "SELECT count(*) FROM marts.fct_journal_lines WHERE is_catchup AND account_id = ?",
            [late.account_id])[0] == 0

    # the independent expectation. The price book is graduated tiers over the units beyond the
    # included volume, so the difference is priced by the whole formula, not by a marginal unit
    # price; that the formula reproduces the issued October amount shows it is the one that
    # billed this line. Rounded once per line, half-even, as the billing system does.
    exponent = _currency_exponents()[late.currency]
    assert _price_minor(late.issued_quantity, late, exponent) == late.issued_minor
    expected = _price_minor(late.issued_quantity + LATE_UNITS, late, exponent) - late.issued_minor
    assert expected > 0

    # a restated row: a new version of the natural key, cumulative, written during the night
    assert late.updated_at < LATE_WRITTEN
    meter = duckdb.connect(str(d / "sources" / "metering.duckdb"))
    try:
        meter.execute(
            "INSERT INTO usage_hourly (hour_start, account_id, project_id, category, outcome, "
            "quantity, updated_at) VALUES (?, ?, ?, ?, 'accepted', ?, ?)",
            [LATE_HOUR, late.account_id, late.project_id, late.category,
             late.quantity + LATE_UNITS, LATE_WRITTEN])
    finally:
        meter.close()

    res = _cli(d, "run", "--date", RERUN_NIGHT, "--json")
    # exit 1: the planted drift is still there (and the billing counters never saw our usage)
    assert res.returncode in (0, 1), res.stderr[-3000:]
    assert json.loads(res.stdout)["batches"] == {"replaced": 1, "skipped_identical": 2}

    # (a) every export of the locked period is byte-identical; nothing else appeared
    assert _tree(exports) == files_before
    with _warehouse(d) as conn:
        # (e) the frozen rows of the locked period did not move
        assert _frozen_state(conn) == frozen_before

        # (c) one balanced catch-up entry in the first open period, about the locked one
        lines = conn.fetch_dicts(
            "SELECT * FROM marts.fct_journal_lines WHERE is_catchup AND account_id = ? "
            "ORDER BY journal_line_id", [late.account_id])
        assert {(r["entry_type"], r["accounting_period"], r["entry_date"], r["service_period"],
                 r["currency"], r["is_period_locked"]) for r in lines} == {
            ("catchup", NEXT_PERIOD, dt.date(2026, 11, 1), PERIOD, late.currency, False)}
        assert len({r["entry_id"] for r in lines}) == 1
        assert sum(r["debit_minor"] for r in lines) == sum(r["credit_minor"] for r in lines) > 0
        assert all(r["gl_account"] for r in lines)
        assert {r["gl_key"]: r["amount_minor"] for r in lines} == {
            f"revenue:{late.category}": -expected, "unbilled_receivables": expected}

        adjustments = conn.fetch_dicts(
            "SELECT invoice_id, period, state, category, quantity, amount_minor "
            "FROM marts.fct_invoice_lines WHERE account_id = ? AND line_type = 'adjustment' "
            "AND service_period = ?", [late.account_id, PERIOD])
        assert [(a["period"], a["state"], a["category"], a["quantity"]) for a in adjustments] == [
            (NEXT_PERIOD, "draft", late.category, LATE_UNITS)]
        revenue = -sum(r["amount_minor"] for r in lines if r["gl_key"].startswith("revenue:"))
        assert revenue == sum(a["amount_minor"] for a in adjustments) == expected

        catchup_revenue = conn.fetchall(
            "SELECT revenue_date, accounting_period, service_period, product, revenue_minor "
            "FROM marts.fct_revenue_daily WHERE is_catchup AND account_id = ?", [late.account_id])
        assert catchup_revenue == [(dt.date(2026, 11, 1), NEXT_PERIOD, PERIOD, late.category, expected)]

        # (d) "as closed vs as known now" shows the same difference
        restated = conn.fetchall(
            "SELECT product, as_closed_minor, as_known_now_minor, difference_minor "
            "FROM marts.fct_locked_period_restatements WHERE locked_period = ? AND account_id = ? "
            "AND difference_minor <> 0", [PERIOD, late.account_id])
        assert restated == [(late.category, late.issued_minor, late.issued_minor + expected, expected)]

    # (b) closing the locked period again re-exports it from its frozen rows, byte-identical
    res = _cli(d, "close", "--period", PERIOD, "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    assert out["action"] == "already_closed"
    assert _tree(exports) == files_before
    assert out["manifest_sha256"] == hashlib.sha256(
        files_before[f"{PERIOD}/manifest.json"]).hexdigest()
    with _warehouse(d) as conn:
        assert _frozen_state(conn) == frozen_before
        # issue 10's invariants after the late usage, its catch-up and the close again: the
        # metering source (with the late version) conserved to the unit, invoices = their
        # lines, the journal (the catch-up entry included) balanced
        check_all(conn, d / "sources" / "metering.duckdb")


# ----------------------------------------------------------------------------- 2. reopen


def test_reopen_needs_a_reason_keeps_the_invoices_issued_and_the_period_closes_again(
        world: Path, tmp_path: Path) -> None:
    d = _copy(world, tmp_path)
    exports = d / "exports"
    files_before = _tree(exports)
    issued_sql = "SELECT * FROM ledger.issued_invoices"
    lines_sql = "SELECT * FROM ledger.issued_invoice_lines"
    with _warehouse(d) as conn:
        audit0 = _audit(conn)
        issued0 = _digest(conn.fetchall(issued_sql))
        lines0 = _digest(conn.fetchall(lines_sql))
        ledger0 = _ledger_digest(conn)
        assert [a[1:3] for a in audit0] == [(PERIOD, "closed")]
        assert conn.fetchone("SELECT count(*), count(DISTINCT invoice_id) FROM ledger.issued_invoices "
                             "WHERE period = ?", [PERIOD]) == (ACCOUNTS, ACCOUNTS)

    # no reason, or a blank one: a user error, nothing changes
    for extra in ([], ["--reason", "   "]):
        _one_line_error(_cli(d, "close", "--period", PERIOD, "--reopen", *extra), 2, "--reason",
                        alone=True)
    with _warehouse(d) as conn:
        assert _ledger_digest(conn) == ledger0 and is_locked(conn, PERIOD)

    reason = "October usage disputed by finance"
    res = _cli(d, "close", "--period", PERIOD, "--reopen", "--reason", reason, "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout) == {"period": PERIOD, "action": "reopened", "reason": reason}
    assert _tree(exports) == files_before  # reopening writes no file
    with _warehouse(d) as conn:
        audit1 = _audit(conn)
        assert audit1[:-1] == audit0
        assert audit1[-1][1:] == (PERIOD, "reopened", reason, None)
        assert not is_locked(conn, PERIOD)
        for table in ("locked_journal_lines", "locked_revenue_daily"):
            assert conn.fetchone(f"SELECT count(*) FROM ledger.{table} WHERE accounting_period = ?",
                                 [PERIOD])[0] == 0
        # the invoices stay issued, each once
        assert conn.fetchall("SELECT state, count(*) FROM marts.fct_invoices WHERE period = ? "
                             "GROUP BY state", [PERIOD]) == [("issued", ACCOUNTS)]
        assert _digest(conn.fetchall(issued_sql)) == issued0
        assert _digest(conn.fetchall(lines_sql)) == lines0
        # the open period shows what is known now: no catch-up is booked for it
        assert conn.fetchone("SELECT count(*) FROM marts.fct_journal_lines WHERE is_catchup "
                             "AND service_period = ?", [PERIOD])[0] == 0
        assert conn.fetchone("SELECT bool_or(is_period_locked) FROM marts.fct_journal_lines "
                             "WHERE accounting_period = ?", [PERIOD])[0] is False
        ledger1 = _ledger_digest(conn)

    # reopening an open period, or a plain close with --reason: user errors, nothing changes
    _one_line_error(_cli(d, "close", "--period", PERIOD, "--reopen", "--reason", reason), 2,
                    "not locked", alone=True)
    _one_line_error(_cli(d, "close", "--period", PERIOD, "--reason", "again"), 2, "--reason",
                    alone=True)
    with _warehouse(d) as conn:
        assert _ledger_digest(conn) == ledger1

    res = _cli(d, "close", "--period", PERIOD, "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    assert out["action"] == "reclosed" and out["invoices"] == ACCOUNTS
    files_after = _tree(exports)
    assert sorted(files_after) == sorted(files_before)
    assert hashlib.sha256(files_after[f"{PERIOD}/manifest.json"]).hexdigest() == out["manifest_sha256"]
    with _warehouse(d) as conn:
        audit2 = _audit(conn)
        assert audit2[:-1] == audit1
        assert audit2[-1][1:3] == (PERIOD, "closed") and audit2[-1][4] == out["manifest_sha256"]
        assert is_locked(conn, PERIOD)
        # nothing issued twice: the same invoices and lines, one row each
        assert _digest(conn.fetchall(issued_sql)) == issued0
        assert _digest(conn.fetchall(lines_sql)) == lines0
        assert conn.fetchone("SELECT count(*), count(DISTINCT invoice_id) FROM ledger.issued_invoices"
                             ) == (ACCOUNTS, ACCOUNTS)
        assert conn.fetchall("SELECT state, count(*) FROM marts.fct_invoices WHERE period = ? "
                             "GROUP BY state", [PERIOD]) == [("issued", ACCOUNTS)]
        # frozen anew, with everything known at the reclose: no difference left to catch up
        assert conn.fetchone("SELECT count(*) FROM ledger.locked_journal_lines "
                             "WHERE accounting_period = ?", [PERIOD])[0] == out["journal_lines"] > 0
        assert conn.fetchone("SELECT count(*) FROM marts.fct_locked_period_restatements "
                             "WHERE locked_period = ? AND difference_minor <> 0", [PERIOD])[0] == 0
        assert conn.fetchone("SELECT count(*) FROM marts.fct_journal_lines WHERE is_catchup "
                             "AND service_period = ?", [PERIOD])[0] == 0
        frozen = _frozen_state(conn)

    # and it is locked again: a further close re-exports it byte-identical
    res = _cli(d, "close", "--period", PERIOD, "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout)["action"] == "already_closed"
    assert _tree(exports) == files_after
    with _warehouse(d) as conn:
        assert _frozen_state(conn) == frozen and _audit(conn) == audit2


# ----------------------------------------------------------------------------- 3. bad input


def test_bad_input_stops_the_close_before_anything_is_written(world: Path, tmp_path: Path) -> None:
    d = _copy(world, tmp_path)
    exports = d / "exports"
    files_before = _tree(exports)
    # only an open period can be closed with bad input: reopen October (directly in the ledger;
    # the close below rebuilds the marts itself, the direct close_period calls read them as they
    # are, which is enough for what they check)
    with _warehouse(d) as conn:
        reopen_period(conn, PERIOD, "test: bad input")
        ledger_before = _ledger_digest(conn)

    def nothing_written(conn: Connection) -> None:
        assert _ledger_digest(conn) == ledger_before
        assert not is_locked(conn, PERIOD)
        assert _tree(exports) == files_before  # no file changed, no temporary folder left

    # 1. a currency of the period without a minor-unit exponent: gone, or NULL
    cfg = load_config(d / "meterline.toml", env=_env())
    with _warehouse(d) as conn:
        currency, line_id, entry_id = conn.fetchone(
            "SELECT currency, journal_line_id, entry_id FROM marts.fct_journal_lines "
            "WHERE accounting_period = ? ORDER BY currency, journal_line_id LIMIT 1", [PERIOD])
        first_of_currency = f"journal line {line_id} of entry {entry_id}"
        conn.execute("CREATE TABLE seeds.currencies_saved AS SELECT * FROM seeds.currencies")
        cases = [
            ("DELETE FROM seeds.currencies WHERE currency = ?",
             f"{first_of_currency}: currency '{currency}' has no known minor-unit exponent"),
            ("UPDATE seeds.currencies SET minor_unit_exponent = NULL WHERE currency = ?",
             f"currency {currency} has exponent None, not an int >= 0"),
        ]
        for change, message in cases:
            conn.execute(change, [currency])
            with pytest.raises(ExportError) as exc:
                close_period(conn, PERIOD, cfg.exports_dir)
            assert message in str(exc.value) and str(exc.value).startswith(f"cannot export {PERIOD}: ")
            conn.execute("DELETE FROM seeds.currencies")
            conn.execute("INSERT INTO seeds.currencies SELECT * FROM seeds.currencies_saved")
            nothing_written(conn)
        conn.execute("DROP TABLE seeds.currencies_saved")
        gl_key = conn.fetchone(
            "SELECT min(gl_key) FROM marts.fct_journal_lines WHERE accounting_period = ? "
            "AND gl_key LIKE 'revenue:%'", [PERIOD])[0]

    # 2. a product without a GL mapping: the seed row removed in a copy of the dbt project,
    #    then `meterline close` as a user runs it (its dbt build loads the seed)
    project = tmp_path / "dbt_project"
    shutil.copytree(ROOT / "dbt_project", project,
                    ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml"))
    seed = project / "seeds" / "gl_accounts.csv"
    rows = seed.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [r for r in rows if not r.startswith(f"{gl_key},")]
    assert len(kept) == len(rows) - 1
    seed.write_text("".join(kept), encoding="utf-8")
    err = _one_line_error(_cli(d, "close", "--period", PERIOD, dbt_project=project), 3,
                          f"cannot export {PERIOD}: unmapped GL account: ")
    with _warehouse(d) as conn:
        unmapped = conn.fetchall(
            "SELECT entry_id, journal_line_id, gl_key FROM marts.fct_journal_lines "
            "WHERE accounting_period = ? AND gl_account IS NULL ORDER BY journal_line_id", [PERIOD])
        assert unmapped and {r[2] for r in unmapped} == {gl_key}
        for entry_id, line_id, _ in unmapped[:10]:
            assert f"entry {entry_id} (line {line_id}): unmapped GL account for gl_key '{gl_key}'" in err
        nothing_written(conn)


# ----------------------------------------------------------------------------- 4. prehistory


def test_a_prepaid_credit_sold_before_the_first_period_learnt_after_close_is_a_catchup(
        world: Path, tmp_path: Path) -> None:
    """The first close froze the entries dated before the first billing period with its own (the
    golden files of tests/test_demo.py show a summer credit sale exported with October). A sale of
    that prehistory learnt after the close must not move the locked opening balances: the October
    files stay byte-identical, the August books stay as frozen, and the sale is a catch-up in
    November for the lock that froze August."""
    d = _copy(world, tmp_path)
    exports = d / "exports"
    files_before = _tree(exports)
    with _warehouse(d) as conn:
        frozen_before = _frozen_state(conn)
        account_id, currency = conn.fetchone(
            "SELECT account_id, currency FROM ledger.issued_invoices WHERE period = ? "
            "ORDER BY account_id LIMIT 1", [PERIOD])
        rollforward_before = _digest(conn.fetchall(
            "SELECT * FROM marts.fct_balance_rollforward WHERE accounting_period <= ?", [PERIOD]))

    credit_id, amount = "cred_late_summer", 4_321
    bill = duckdb.connect(str(d / "sources" / "billing.duckdb"))
    try:
        bill.execute("INSERT INTO credits (credit_id, account_id, currency, amount_minor, granted_at, "
                     "expires_at, reason) VALUES (?, ?, ?, ?, ?, NULL, 'prepaid')",
                     [credit_id, account_id, currency, amount,
                      dt.datetime(2026, 8, 14, 10)])
    finally:
        bill.close()
    res = _cli(d, "run", "--date", RERUN_NIGHT, "--json")
    assert res.returncode in (0, 1), res.stderr[-3000:]

    assert _tree(exports) == files_before
    with _warehouse(d) as conn:
        assert _frozen_state(conn) == frozen_before
        # the locked months' roll-forward (opening balances included) did not move
        assert _digest(conn.fetchall(
            "SELECT * FROM marts.fct_balance_rollforward WHERE accounting_period <= ?", [PERIOD])) \
            == rollforward_before
        # August is frozen: the sale is not booked there now ...
        assert conn.fetchone("SELECT count(*) FROM marts.fct_journal_lines WHERE reference = ? "
                             "AND accounting_period <= ?", [credit_id, PERIOD])[0] == 0
        # ... but as a catch-up in November, for October's lock
        catchup = conn.fetchall(
            "SELECT accounting_period, service_period, entry_type, gl_key, amount_minor "
            "FROM marts.fct_journal_lines WHERE is_catchup AND reference = ? ORDER BY gl_key", [credit_id])
        assert catchup == [(NEXT_PERIOD, PERIOD, "catchup", "deferred_revenue", -amount),
                           (NEXT_PERIOD, PERIOD, "catchup", "receivables", amount)]
