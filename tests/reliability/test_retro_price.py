"""Issue 10, case 7: a retroactive price change after close; the deltas are exact to the minor unit.

October 2026 is closed in the shared demo world (issued and locked). Then the billing system
corrects October's prices: for one usage category of every account, the price rows in force on
2026-10-01 are split in the billing source's `price_books` - the old rows now end on 2026-10-01,
new rows `[2026-10-01, 2026-11-01)` carry the corrected unit prices (up for some accounts, down for
others, every tier of the category), and rows from 2026-11-01 on carry the old prices again, so
November is not repriced. `price_books` has no `updated_at`: the billing source is a full snapshot
each night (docs/sources.md), so the change is seen by the next billing batch - here the rerun of
the night 2026-11-03, whose billing batch is replaced while metering and Stripe are identical.

Proved (DECISIONLOG "Late data by invoice state", "Price resolution", "Locked periods are frozen
rows", "Rounding mode per contract", "Money is integer minor units, rounded once per line"):

  * every file under exports/2026-10 is byte-identical, after the night and after closing October
    again (which re-exports it from the frozen rows); the ledger's issued invoices and frozen
    journal and revenue rows do not move;
  * each repriced October line becomes exactly one `repriced` adjustment line (quantity 0) on the
    account's November draft, equal to an independent Decimal computation: the issued quantity
    beyond the included volume, split by the graduated tiers, priced at the new and at the old
    unit prices, each rounded once by the subscription's rounding mode to the currency's minor
    unit (ISO 4217 exponents from the `currencies` seed); the old-price amount must reproduce the
    issued line exactly, and the adjustment is new minus issued. So October's line plus its
    adjustment is the line at the new price rounded once, as the DECISIONLOG rules want. (Billed
    units x price difference is exact too, but rounding it on its own would round the line twice:
    it can differ from the booked adjustment by one minor unit; it is printed beside it.)
  * nothing else changes: no other invoice line, no other invoice total (the November totals move
    by exactly the adjustments - a commitment true-up on the same draft included), no metered
    quantity, no journal or revenue row other than the catch-up of 2026-10 booked on 2026-11-01
    (per account, revenue moves by exactly its adjustment; by product, on the repriced product
    only, except where a promotional credit is allocated pro rata over the products); every entry
    balances, and the only new reconciliation findings are the `issued_vs_current` drifts of
    exactly the repriced lines (each until its adjustment is issued);
  * the warehouse invariants (usage conservation, invoice totals, balanced journal) hold.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

import duckdb
import pytest
from conftest import ROOT, copy_world, demo_env, run_cli
from invariants import check_all

from meterline.config import load_config
from meterline.warehouse import connect

PERIOD, NEXT_PERIOD = "2026-10", "2026-11"
PERIOD_START, NEXT_START = dt.date(2026, 10, 1), dt.date(2026, 11, 1)
NIGHT = "2026-11-03"
# the correction of each repriced (plan, category), in order: every tier's unit price times this
FACTORS = (Decimal("1.0806"), Decimal("0.9847"), Decimal("1.0391"), Decimal("0.9563"))
PRICE_QUANTUM = Decimal("1e-12")  # DECIMAL(38,12)
ROUNDING = {None: ROUND_HALF_EVEN, "half_even": ROUND_HALF_EVEN, "half_up": ROUND_HALF_UP}
UNSUPPORTED_TERMS = ("reserved_quantity", "spend_cap_minor", "package_size", "spike_multiplier")


@dataclass(frozen=True)
class Tier:
    price_id: str
    start: int
    end: int | None
    price: Decimal


@dataclass(frozen=True)
class Line:
    """An issued October usage line the correction reprices, and what the oracle expects."""
    account_id: str
    currency: str
    exponent: int
    rounding_mode: str | None
    plan_id: str
    category: str
    line_key: str
    quantity: int  # metered units as issued
    issued_minor: int
    included: int
    old: tuple[Tier, ...]
    new: tuple[Tier, ...]

    def _exact(self, tiers: tuple[Tier, ...]) -> Decimal:
        billable = max(0, self.quantity - self.included)
        total = Decimal(0)
        for t in tiers:
            upper = billable if t.end is None else min(billable, t.end)
            total += max(0, upper - t.start) * t.price
        return total

    def _minor(self, amount: Decimal) -> int:
        return int(amount.scaleb(self.exponent).quantize(Decimal(1), rounding=ROUNDING[self.rounding_mode]))

    def amounts(self) -> tuple[int, int, Decimal]:
        """(old amount, new amount) each rounded once, and the exact difference in minor units
        (billed units x price difference, unrounded)."""
        with localcontext() as ctx:
            ctx.prec = 100
            old, new = self._exact(self.old), self._exact(self.new)
            return self._minor(old), self._minor(new), (new - old).scaleb(self.exponent)


def _env(world: Path) -> dict[str, str]:
    return {**demo_env(), "METERLINE_CONFIG": str(world / "meterline.toml")}


def _exponents() -> dict[str, int]:
    with (ROOT / "dbt_project" / "seeds" / "currencies.csv").open(newline="") as f:
        return {r["currency"]: int(r["minor_unit_exponent"]) for r in csv.DictReader(f)}


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(Path(root, f).relative_to(folder)): Path(root, f).read_bytes()
            for root, _, files in os.walk(folder) for f in files}


def _rows(conn, sql: str) -> Counter:
    return Counter(tuple(r) for r in conn.fetchall(sql))


def _snapshot(conn) -> dict[str, object]:
    """What the case compares before and after the night."""
    return {
        "ledger": {t: _rows(conn, f'SELECT * FROM "ledger"."{t}"') for t in (
            "issued_invoices", "issued_invoice_lines", "locked_journal_lines",
            "locked_revenue_daily", "period_locks", "period_audit")},
        "lines": conn.fetch_dicts("SELECT invoice_id, account_id, period, service_period, line_key, "
                                  "line_type, category, currency, quantity, amount_minor, state "
                                  "FROM marts.fct_invoice_lines"),
        "invoices": {r["invoice_id"]: r for r in conn.fetch_dicts(
            "SELECT invoice_id, account_id, period, currency, total_minor, line_count, state "
            "FROM marts.fct_invoices")},
        "adjustments": conn.fetch_dicts("SELECT * FROM intermediate.int_invoice_adjustments"),
        "usage": {(r["account_id"], r["category"], r["period"]): r for r in conn.fetch_dicts(
            "SELECT account_id, category, period, metered_quantity, billable_quantity, amount_minor "
            "FROM marts.fct_billable_usage")},
        "journal": conn.fetch_dicts("SELECT * FROM marts.fct_journal_lines"),
        "revenue": conn.fetch_dicts("SELECT * FROM marts.fct_revenue_daily"),
        "findings": conn.fetch_dicts("SELECT * FROM marts.rec_findings"),
    }


def _key(row: dict) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in row.items()))


def _added_removed(before: list[dict], after: list[dict]) -> tuple[list[dict], list[dict]]:
    """Rows only in `after`, rows only in `before` (a changed row is in both lists)."""
    b, a = Counter(map(_key, before)), Counter(map(_key, after))
    rows = {_key(r): r for r in [*before, *after]}
    return [rows[k] for k in (a - b).elements()], [rows[k] for k in (b - a).elements()]


def _pick_and_reprice(world: Path, conn) -> list[Line]:
    """Choose one usage category per account (its largest issued October usage line the oracle can
    price: graduated or per-unit tiers, no reserved volume, spend cap, package or spike protection,
    one subscription the whole month, no adjustment pending for the line yet), rewrite the price
    book of each chosen (plan, category) in the billing source, and return every issued October
    line that the rewrite reprices, with the old and new tiers."""
    exponents = _exponents()
    pending = {(r[0], r[1]) for r in conn.fetchall(
        "SELECT account_id, line_key FROM intermediate.int_invoice_adjustments WHERE service_period = ?",
        [PERIOD])}
    issued = conn.fetch_dicts(
        "SELECT l.account_id, l.line_key, l.category, l.currency, l.quantity, l.amount_minor "
        "FROM ledger.issued_invoice_lines l JOIN ledger.issued_invoices i USING (invoice_id) "
        "WHERE l.period = ? AND l.service_period = ? AND l.line_type = 'usage' AND i.voided_at IS NULL "
        "ORDER BY l.account_id, l.amount_minor DESC, l.line_key", [PERIOD, PERIOD])
    bill = duckdb.connect(str(world / "sources" / "billing.duckdb"))
    try:
        cols = [c[0] for c in bill.execute("DESCRIBE price_books").fetchall()]

        def price_rows(plan_id: str, category: str) -> list[dict]:
            return [dict(zip(cols, r, strict=True)) for r in bill.execute(
                "SELECT * FROM price_books WHERE plan_id = ? AND category = ? AND effective_from <= ? "
                "AND (effective_to IS NULL OR effective_to > ?) ORDER BY tier_start",
                [plan_id, category, PERIOD_START, PERIOD_START]).fetchall()]

        def contract(account_id: str) -> tuple[str, str | None] | None:
            subs = bill.execute(
                "SELECT plan_id, started_at, ended_at, rounding_mode FROM subscriptions "
                "WHERE account_id = ? AND started_at < ? AND (ended_at IS NULL OR ended_at > ?)",
                [account_id, NEXT_START, PERIOD_START]).fetchall()
            if len(subs) != 1:
                return None
            plan_id, started, ended, mode = subs[0]
            if started.date() > PERIOD_START or (ended is not None and ended.date() < NEXT_START):
                return None
            return plan_id, mode

        def priceable(rows: list[dict]) -> bool:
            return bool(rows) and all(
                r["pricing_model"] in ("graduated", "per_unit") and not any(r[t] for t in UNSUPPORTED_TERMS)
                and r["effective_from"] < PERIOD_START
                and (r["effective_to"] is None or r["effective_to"] > NEXT_START)
                for r in rows) and len({r["included_quantity"] for r in rows}) == 1

        chosen: dict[str, tuple[str, str]] = {}  # account -> (plan, category)
        for r in issued:
            c = contract(r["account_id"])
            if r["account_id"] in chosen or c is None or (r["account_id"], r["line_key"]) in pending:
                continue
            rows = price_rows(c[0], r["category"])
            if priceable(rows) and int(r["quantity"]) > int(rows[0]["included_quantity"] or 0):
                chosen[r["account_id"]] = (c[0], r["category"])
        repriced = sorted(set(chosen.values()))
        assert len(chosen) >= 3, f"the sample world should offer a priceable line for most accounts: {chosen}"

        old_tiers: dict[tuple[str, str], tuple[Tier, ...]] = {}
        new_tiers: dict[tuple[str, str], tuple[Tier, ...]] = {}
        for i, (plan_id, category) in enumerate(repriced):
            rows = price_rows(plan_id, category)
            factor = FACTORS[i % len(FACTORS)]
            old_tiers[(plan_id, category)] = tuple(
                Tier(r["price_id"], int(r["tier_start"]), None if r["tier_end"] is None else int(r["tier_end"]),
                     Decimal(r["unit_price_decimal"])) for r in rows)
            new_tiers[(plan_id, category)] = tuple(
                Tier(f"{t.price_id}_{PERIOD}_corrected", t.start, t.end,
                     (t.price * factor).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_EVEN))
                for t in old_tiers[(plan_id, category)])
            for r, new in zip(rows, new_tiers[(plan_id, category)], strict=True):
                october = {**r, "price_id": new.price_id, "effective_from": PERIOD_START,
                           "effective_to": NEXT_START, "unit_price_decimal": new.price}
                later = {**r, "price_id": f"{r['price_id']}_from_{NEXT_PERIOD}", "effective_from": NEXT_START}
                bill.execute("UPDATE price_books SET effective_to = ? WHERE price_id = ?",
                             [PERIOD_START, r["price_id"]])
                for row in (october, later):
                    bill.execute(f"INSERT INTO price_books ({', '.join(cols)}) VALUES "
                                 f"({', '.join('?' for _ in cols)})", [row[c] for c in cols])

        lines = []
        for r in issued:  # every issued line of a repriced (plan, category): all must be priceable
            c = contract(r["account_id"])
            if c is None or (c[0], r["category"]) not in old_tiers:
                continue
            assert (r["account_id"], r["line_key"]) not in pending, r
            old = old_tiers[(c[0], r["category"])]
            rows = [x for x in price_rows(c[0], r["category"]) if x["price_id"].endswith("_corrected")]
            lines.append(Line(
                account_id=r["account_id"], currency=r["currency"], exponent=exponents[r["currency"]],
                rounding_mode=c[1], plan_id=c[0], category=r["category"], line_key=r["line_key"],
                quantity=int(r["quantity"]), issued_minor=int(r["amount_minor"]),
                included=int(rows[0]["included_quantity"] or 0), old=old,
                new=new_tiers[(c[0], r["category"])]))
    finally:
        bill.close()
    return lines


@pytest.mark.slow
def test_retroactive_price_change_is_one_exact_adjustment_and_october_stays_frozen(
        demo_world: Path, tmp_path: Path) -> None:
    world = copy_world(demo_world, tmp_path)
    env = _env(world)
    cfg = load_config(world / "meterline.toml", env=env)
    exports = world / "exports" / PERIOD
    files_before = _tree(exports)
    assert "manifest.json" in files_before

    with connect(cfg.warehouse, read_only=True) as conn:
        assert conn.fetchall("SELECT period FROM ledger.period_locks") == [(PERIOD,)]
        before = _snapshot(conn)
        lines = _pick_and_reprice(world, conn)
        spread = {r[0] for r in conn.fetchall(
            "SELECT DISTINCT account_id FROM ledger.issued_invoice_lines WHERE period = ? "
            "AND line_type IN ('credit', 'discount')", [PERIOD])}

    # the oracle: the old prices must reproduce each issued line, to the minor unit
    expected: dict[str, int] = {}
    exact: dict[str, Decimal] = {}
    for line in lines:
        old_minor, new_minor, delta = line.amounts()
        assert old_minor == line.issued_minor, (line, old_minor)
        expected[line.account_id + "|" + line.line_key] = new_minor - old_minor
        exact[line.account_id + "|" + line.line_key] = delta
        # rounding each line once can move the difference by less than one minor unit, no more
        assert abs(Decimal(new_minor - old_minor) - delta) < 1, (line, delta)
    assert all(expected.values()), expected  # every correction is visible in minor units
    assert {x > 0 for x in expected.values()} == {True, False}  # some up, some down

    res = run_cli("run", "--date", NIGHT, "--json", cwd=world, env=env)
    assert res.returncode in (0, 1), res.stderr[-3000:]  # 1: the world's planted drift
    assert json.loads(res.stdout)["batches"] == {"replaced": 1, "skipped_identical": 2}
    # the new price book arrives with the night's billing snapshot; metering and Stripe are as before
    assert re.search(r"billing \d+ rows \(replaced\), stripe \d+ rows \(skipped_identical\), "
                     r"metering \d+ rows \(skipped_identical\)", res.stderr), res.stderr[-3000:]

    violations: list[tuple] = []

    def check(ok: bool, *what: object) -> None:
        if not ok:
            violations.append(what)

    with connect(cfg.warehouse, read_only=True) as conn:
        after = _snapshot(conn)
        figures = check_all(conn, world / "sources" / "metering.duckdb")
    by_line = {line.account_id + "|" + line.line_key: line for line in lines}

    # the locked period: its exports and frozen ledger rows
    check(_tree(exports) == files_before, "exports/2026-10 changed")
    for table, rows in before["ledger"].items():
        check(after["ledger"][table] == rows, "ledger table changed", table)

    # adjustments: exactly one `repriced` line per repriced line, the expected amount, nothing else
    added, removed = _added_removed(before["adjustments"], after["adjustments"])
    check(removed == [], "adjustments removed", removed)
    got_adj = {}
    for a in added:
        k = f"{a['account_id']}|{a['line_key']}"
        got_adj[k] = int(a["amount_minor"])
        check((a["target_period"], a["service_period"], a["quantity"], a["adjustment_reason"])
              == (NEXT_PERIOD, PERIOD, 0, "repriced"), "adjustment", a)
    check(got_adj == expected, "adjustments != expected", got_adj, expected)

    added, removed = _added_removed(before["lines"], after["lines"])
    check(removed == [], "invoice lines removed or changed", removed)
    got_lines = {}
    for a in added:
        got_lines[f"{a['account_id']}|{a['line_key'].removeprefix(f'adjustment|{PERIOD}|')}"] = int(a["amount_minor"])
        check((a["invoice_id"], a["period"], a["service_period"], a["line_type"], a["quantity"], a["state"])
              == (f"inv_{a['account_id']}_{NEXT_PERIOD}", NEXT_PERIOD, PERIOD, "adjustment", 0, "draft"),
              "invoice line", a)
    check(got_lines == expected, "adjustment lines on the drafts != expected", got_lines, expected)

    per_account: dict[str, int] = defaultdict(int)
    for k, v in expected.items():
        per_account[by_line[k].account_id] += v
    check(before["invoices"].keys() == after["invoices"].keys(), "invoices appeared or disappeared")
    for invoice_id, b in before["invoices"].items():
        a = after["invoices"].get(invoice_id, {})
        shift = per_account.get(b["account_id"], 0) if b["period"] == NEXT_PERIOD else 0
        want = {**b, "total_minor": int(b["total_minor"]) + shift, "line_count": b["line_count"] + (shift != 0)}
        check(a == want, "invoice", invoice_id, b, a)

    for key, b in before["usage"].items():
        a = after["usage"].get(key, {})
        hit = [line for line in lines if (line.account_id, line.category, PERIOD) == key]
        want = dict(b, amount_minor=hit[0].amounts()[1]) if hit else b
        check(a == want, "billable usage", key, b, a)

    # accounting: the locked period's rows stay; what moves is the catch-up for 2026-10 booked in
    # 2026-11 (one entry per account), by exactly the adjustment. A promotional credit is allocated
    # pro rata to the products it discounts (DECISIONLOG "Revenue recognition"), so on an account
    # with one the catch-up spreads over its products; elsewhere it is the repriced product only.
    want_product: dict[tuple[str, str], int] = defaultdict(int)
    for k, v in expected.items():
        want_product[(by_line[k].account_id, by_line[k].category)] += v

    def catchup(r: dict) -> bool:
        return bool(r["is_catchup"]) and r["service_period"] == PERIOD and r["accounting_period"] == NEXT_PERIOD

    def moved(rows_before: list[dict], rows_after: list[dict], amount) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = defaultdict(int)
        for sign, rows in ((-1, rows_before), (1, rows_after)):
            for r in rows:
                if catchup(r) and amount(r) is not None:
                    out[(r["account_id"], r["product"])] += sign * amount(r)
        return {k: v for k, v in out.items() if v}

    for name, amount in (("journal", lambda r: -int(r["amount_minor"]) if r["gl_account_type"] == "revenue" else None),
                         ("revenue", lambda r: int(r["revenue_minor"]))):
        added, removed = _added_removed(before[name], after[name])
        check(all(catchup(r) and r["account_id"] in per_account for r in added + removed),
              f"{name}: rows other than the 2026-10 catch-ups of the repriced accounts changed",
              [r for r in added + removed if not (catchup(r) and r["account_id"] in per_account)])
        delta = moved(before[name], after[name], amount)
        by_account: dict[str, int] = defaultdict(int)
        for (account_id, _product), v in delta.items():
            by_account[account_id] += v
        check({a: v for a, v in by_account.items() if v} == dict(per_account), f"{name}: catch-up revenue", delta)
        for (account_id, product), v in delta.items():
            check(account_id in spread or v == want_product.get((account_id, product)),
                  f"{name}: catch-up revenue of a product not repriced", account_id, product, v)
    entries: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in after["journal"]:
        entries[r["entry_id"]][0] += int(r["debit_minor"])
        entries[r["entry_id"]][1] += int(r["credit_minor"])
    check(all(d == c for d, c in entries.values()), "unbalanced entries",
          {e: v for e, v in entries.items() if v[0] != v[1]})
    check(all(r["entry_date"] == NEXT_START and r["entry_type"] == "catchup" for r in after["journal"] if catchup(r)),
          "catch-up entry dates")

    # reconciliation: only the issued-vs-current drift of exactly the repriced lines is new
    added, removed = _added_removed(before["findings"], after["findings"])
    check(removed == [], "findings removed", removed)
    want_findings = {(line.account_id, line.category, PERIOD, abs(expected[k])) for k, line in by_line.items()}
    check({(f["account_id"], f["category"], f["period"], abs(int(f["difference"]))) for f in added
           if (f["check_name"], f["status"]) == ("issued_vs_current", "drift")} == want_findings
          and len(added) == len(want_findings), "new findings", added)

    # closing October again re-exports it from its frozen rows: byte-identical
    res = run_cli("close", "--period", PERIOD, "--json", cwd=world, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    check(out["action"] == "already_closed", "re-close", out["action"])
    check(_tree(exports) == files_before, "exports/2026-10 changed by the re-close")
    check(out["manifest_sha256"] == hashlib.sha256(files_before["manifest.json"]).hexdigest(), "manifest hash")

    for k in sorted(expected):
        line = by_line[k]
        alone = int(exact[k].quantize(Decimal(1), rounding=ROUNDING[line.rounding_mode]))
        print(f"retroactive price change {line.account_id} {line.category} ({line.currency}, exponent "
              f"{line.exponent}, {len(line.old)} tier(s), {line.rounding_mode or 'half_even'}): delta "
              f"{got_adj.get(k)} minor units, expected {expected[k]} (issued {line.issued_minor}, repriced "
              f"{line.issued_minor + expected[k]}; billed units x price difference = {exact[k].normalize():f}, "
              f"{alone} if rounded alone)")
    print(f"retroactive price change: delta "
          f"{', '.join(f'{got_adj.get(k)} {by_line[k].currency}' for k in sorted(expected))} minor units, "
          f"expected {', '.join(f'{expected[k]} {by_line[k].currency}' for k in sorted(expected))}, "
          f"{len(violations)} violations")
    assert not violations, violations
    assert all(not f.violations for f in figures)
