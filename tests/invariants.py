"""The invariants issue 10's reliability cases check after every fault, on either engine.

Each function reads a built warehouse (and, where it says, the metering source or Stripe) and
returns a `Figure`: what was counted and every violation. `check_all` runs the warehouse ones and
asserts; each case prints the figures it checked.

1. **Usage conservation**, per account, category and billing period:
   - *nothing lost on the way in*: the metering source's units (the latest version of every
     natural key, exact copies included, accepted outcome, updated before the warehouse's as_of;
     and every row with an hour but no update time) = metered units (fct_billable_usage) +
     quarantined units (fct_quarantine, likewise the latest version of each key and every row
     with no update time: a restatement replaces the quantity before it; a row the loader kept
     out of raw is counted from its row_json);
   - *every metered unit lands in exactly one bucket*: metered = billed + included (and
     reserved) used + held (spike protection) + over budget (spend cap) + unpriced, over the
     rating segments (int_usage_rated). An unpriced segment (no subscription or price, a plan in
     another currency than the account, ...) bills nothing (docs/pricing.md rule 8): its units
     beyond the held ones are unpriced, and a unit it billed, included or put over budget is a
     violation.
2. **Invoice total = sum of its lines**: the current invoices (fct_invoices, fct_invoice_lines)
   and the issued ones (ledger.issued_invoices, ledger.issued_invoice_lines).
3. **Journal debits = credits** per entry and currency (fct_journal_lines).
4. **Pushed invoices match Stripe one to one**: every confirmed invoice in the outbox is exactly
   one Stripe invoice carrying its key, with the ledger's total, and Stripe holds no other
   invoice with a meterline key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meterline.warehouse import Connection

# dbt's work list of one build, not a result: int_metering_usage_changed_hours lists the hours
# that build rebuilt, so a rerun that changes nothing lists none where the run before listed
# some (DECISIONLOG "The row-level metering model is incremental by hour"). Checks that a rerun
# changes no table leave it out; test_reruns checks that the rerun's list is empty.
BUILD_WORK_TABLES = frozenset({"intermediate.int_metering_usage_changed_hours"})


def warehouse_digest(duckdb_file: Path) -> dict[str, tuple[int, str]]:
    """Every table and view of a DuckDB warehouse (the ledger's included; dbt's work list,
    BUILD_WORK_TABLES, left out): its row count and a hash of its rows, order-independent. For
    the checks that a rerun changes nothing. Opened read-only: no writer may hold the file."""
    import duckdb

    con = duckdb.connect(str(duckdb_file), read_only=True)
    try:
        out = {}
        for schema, name in con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_catalog = current_database() ORDER BY 1, 2").fetchall():
            if f"{schema}.{name}" in BUILD_WORK_TABLES:
                continue
            rows = con.execute(f'SELECT * FROM "{schema}"."{name}"').fetchall()
            body = "\n".join(sorted(repr(r) for r in rows)).encode()
            out[f"{schema}.{name}"] = (len(rows), hashlib.sha256(body).hexdigest())
        return out
    finally:
        con.close()

Key = tuple[str, str, str]  # account_id, category, period


@dataclass
class Figure:
    name: str
    counted: dict[str, int] = field(default_factory=dict)
    violations: list[Any] = field(default_factory=list)

    def __str__(self) -> str:
        counted = ", ".join(f"{k} {v}" for k, v in self.counted.items())
        return f"{self.name}: {counted}; {len(self.violations)} violation(s)"


def _period(t: Any) -> str:
    return f"{t:%Y-%m}"


def _as_of(conn: Connection) -> dt.datetime:
    row = conn.fetchone("SELECT max(interval_end) FROM raw.batch_ledger "
                        "WHERE source = 'metering' AND status = 'loaded'")
    assert row and row[0] is not None, "no metering night loaded"
    return row[0]


def _timestamp(text: Any) -> dt.datetime | None:
    """A quarantined row's time as its row_json holds it; None when it is missing or unreadable."""
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(str(text)).replace(tzinfo=None)
    except ValueError:
        return None


def _first(conn: Connection) -> dt.datetime:
    return conn.fetchone("SELECT min(interval_start) FROM raw.batch_ledger "
                         "WHERE source = 'metering' AND status = 'loaded'")[0]


def metering_source_units(source_db: Path, since: dt.datetime, as_of: dt.datetime) -> dict[Key, int]:
    """Accepted units per key in the metering source (a DuckDB file with main.usage_hourly), as
    the pipeline should have seen them by `as_of`: per natural key, the rows of its latest
    update (exact copies are all counted: the pipeline quarantines all but one), and every row
    with an hour but no update time (no version of anything: quarantined, once)."""
    import duckdb

    con = duckdb.connect(str(source_db), read_only=True)
    try:
        rows = con.execute("""
            WITH seen AS (
                SELECT * FROM main.usage_hourly
                WHERE (updated_at < ? OR updated_at IS NULL) AND hour_start >= ? AND hour_start < ?
            ), latest AS (
                SELECT *, max(updated_at) OVER (
                    PARTITION BY hour_start, account_id, project_id, category, outcome) AS newest
                FROM seen
            )
            SELECT account_id, category, strftime(hour_start, '%Y-%m'), sum(quantity)
            FROM latest WHERE (updated_at = newest OR updated_at IS NULL) AND outcome = 'accepted'
            GROUP BY ALL""", [as_of, since, as_of]).fetchall()
    finally:
        con.close()
    return {(a, c, p): int(q) for a, c, p, q in rows}


def usage_conservation(conn: Connection, source_db: Path | None = None) -> Figure:
    fig = Figure("usage conservation")
    metered: dict[Key, int] = defaultdict(int)
    for r in conn.fetch_dicts("SELECT account_id, category, period, sum(metered_quantity) AS q "
                              "FROM marts.fct_billable_usage GROUP BY account_id, category, period"):
        metered[(r["account_id"], r["category"], r["period"])] += int(r["q"])
    # quarantined units: like the source side, a natural key's latest version only (a restated
    # row's quantity replaces the one before, it does not add to it), and each row with no
    # update time; the latest version is the latest any row of the key carries, raw or not
    latest: dict[tuple, Any] = {}
    for *key, newest in conn.fetchall(
            "SELECT hour_start, account_id, project_id, category, outcome, max(updated_at) "
            "FROM raw.metering_usage_hourly GROUP BY hour_start, account_id, project_id, category, outcome"):
        latest[tuple(key)] = newest
    candidates = []
    for r in conn.fetch_dicts("SELECT account_id, project_id, category, outcome, hour_start, updated_at, "
                              "quantity, row_json FROM marts.fct_quarantine WHERE source = 'metering'"):
        row = json.loads(r["row_json"]) if r["row_json"] else {}
        quantity = r["quantity"] if r["quantity"] is not None else row.get("quantity")
        outcome = r["outcome"] if r["outcome"] is not None else row.get("outcome")
        hour = r["hour_start"] if r["hour_start"] is not None else _timestamp(row.get("hour_start"))
        written = r["updated_at"] if r["updated_at"] is not None else _timestamp(row.get("updated_at"))
        if outcome != "accepted" or hour is None or not isinstance(quantity, int):
            continue  # not billable in any case (or no quantity to count): nothing to conserve
        nk = (hour, r["account_id"] or row.get("account_id"), r["project_id"] or row.get("project_id"),
              r["category"] or row.get("category"), outcome)
        if written is not None and (latest.get(nk) is None or written > latest[nk]):
            latest[nk] = written
        candidates.append((nk, written, quantity))
    quarantined: dict[Key, int] = defaultdict(int)
    for nk, written, quantity in candidates:
        if written is None or written == latest[nk]:
            quarantined[(nk[1], nk[3], _period(nk[0]))] += quantity
    fig.counted["metered units"] = sum(metered.values())
    fig.counted["quarantined units"] = sum(quarantined.values())

    if source_db is not None:
        source = metering_source_units(source_db, _first(conn), _as_of(conn))
        fig.counted["source units"] = sum(source.values())
        for key in sorted(source.keys() | metered.keys() | quarantined.keys(), key=str):
            want, got = source.get(key, 0), metered.get(key, 0) + quarantined.get(key, 0)
            if want != got:
                fig.violations.append(("source != metered + quarantined", key, want, got))

    buckets: dict[Key, Counter] = defaultdict(Counter)
    for r in conn.fetch_dicts(
            "SELECT account_id, category, period, metered_quantity, held_quantity, included_quantity, "
            "reserved_quantity, billed_quantity, over_budget_quantity, unpriced_reason "
            "FROM intermediate.int_usage_rated"):
        b = buckets[(r["account_id"], r["category"], r["period"])]
        m, held = int(r["metered_quantity"]), int(r["held_quantity"])
        used_allowance = min(int(r["included_quantity"]) + int(r["reserved_quantity"]), m - held)
        b["metered"] += m
        b["held"] += held
        b["included"] += used_allowance
        b["billed"] += int(r["billed_quantity"])
        b["over budget"] += int(r["over_budget_quantity"])
        if r["unpriced_reason"] is not None:
            b["unpriced"] += m - held
    for key, b in sorted(buckets.items()):
        if b["metered"] != b["billed"] + b["included"] + b["held"] + b["over budget"] + b["unpriced"]:
            fig.violations.append(("metered != billed + included + held + over budget + unpriced", key, dict(b)))
        if b["metered"] != metered.get(key, 0):
            fig.violations.append(("rated segments != fct_billable_usage", key, b["metered"], metered.get(key)))
    for name in ("billed", "included", "held", "over budget", "unpriced"):
        fig.counted[f"{name} units"] = sum(b[name] for b in buckets.values())
    return fig


def invoice_totals(conn: Connection) -> Figure:
    fig = Figure("invoice total = sum of lines")
    for label, head, lines in (("current", "marts.fct_invoices", "marts.fct_invoice_lines"),
                               ("issued", "ledger.issued_invoices", "ledger.issued_invoice_lines")):
        rows = conn.fetch_dicts(
            f"SELECT i.invoice_id, i.total_minor, (SELECT coalesce(sum(l.amount_minor), 0) FROM {lines} l "
            f"WHERE l.invoice_id = i.invoice_id) AS lines_minor FROM {head} i")
        fig.counted[f"{label} invoices"] = len(rows)
        fig.violations += [(label, r["invoice_id"], r["total_minor"], r["lines_minor"])
                           for r in rows if int(r["total_minor"]) != int(r["lines_minor"])]
    return fig


def journal_balanced(conn: Connection) -> Figure:
    fig = Figure("journal debits = credits")
    rows = conn.fetch_dicts(
        "SELECT entry_id, currency, sum(debit_minor) AS debit, sum(credit_minor) AS credit "
        "FROM marts.fct_journal_lines GROUP BY entry_id, currency")
    fig.counted["entries"] = len(rows)
    fig.counted["debits minor"] = sum(int(r["debit"]) for r in rows)
    fig.violations = [(r["entry_id"], r["currency"], r["debit"], r["credit"])
                      for r in rows if int(r["debit"]) != int(r["credit"])]
    return fig


def stripe_one_to_one(conn: Connection, client: Any) -> Figure:
    """Every confirmed outbox invoice is one Stripe invoice with its key and the ledger's total;
    no Stripe invoice carries a meterline key the outbox does not know, none twice."""
    from meterline.stripe_api import STRIPE_AMOUNT_FACTOR

    fig = Figure("pushed invoices = Stripe invoices")
    outbox = {r["object_key"]: r for r in conn.fetch_dicts(
        "SELECT o.object_key, o.stripe_id, o.currency, i.total_minor FROM ledger.stripe_outbox o "
        "JOIN ledger.issued_invoices i ON i.invoice_id = o.invoice_id "
        "WHERE o.kind = 'invoice' AND o.state = 'confirmed'")}
    invoices = [inv.to_dict() for inv in client.v1.invoices.list(params={"limit": 100}).auto_paging_iter()]
    keyed = Counter((i.get("metadata") or {}).get("meterline_key") for i in invoices)
    fig.counted["confirmed in outbox"] = len(outbox)
    fig.counted["Stripe invoices with a key"] = sum(n for k, n in keyed.items() if k)
    fig.violations += [("twice in Stripe", k, n) for k, n in keyed.items() if k and n > 1]
    fig.violations += [("in Stripe, not in outbox", k) for k in keyed if k and k not in outbox]
    by_key = {(i.get("metadata") or {}).get("meterline_key"): i for i in invoices}
    for key, row in outbox.items():
        inv = by_key.get(key)
        if inv is None:
            fig.violations.append(("in outbox, not in Stripe", key))
            continue
        factor = STRIPE_AMOUNT_FACTOR.get(str(row["currency"]).upper(), 1)
        if inv["id"] != row["stripe_id"] or int(inv["total"]) != int(row["total_minor"]) * factor:
            fig.violations.append(("differs", key, inv["id"], row["stripe_id"], inv["total"], row["total_minor"]))
    return fig


def check_all(conn: Connection, source_db: Path | None = None) -> list[Figure]:
    """The warehouse invariants (1-3): print each figure, assert none is violated."""
    figures = [usage_conservation(conn, source_db), invoice_totals(conn), journal_balanced(conn)]
    for f in figures:
        print(f)
    bad = {f.name: f.violations[:5] for f in figures if f.violations}
    assert not bad, f"invariants violated: {bad}"
    return figures
