"""Issue 10, case 5: duplicate metering rows and duplicate Stripe events and objects; counts unchanged.

On a copy of the shared demo world (tests/conftest.py), the sources of the nights 2026-11-01 ..
2026-11-03 get exact copies:

  * metering (`usage_hourly`): for each night, accepted rows written that night for three accounts
    (a late one for a locked October hour where there is one, else the account's largest) copied
    once, one of them twice.
    A night pulls the versions written during it (docs/sources.md), so the rerun of those nights
    reads every copy; the loader keeps the first and quarantines the rest as `duplicate_key`
    (DECISIONLOG "Quarantine is computed in dbt", "Row-level contract violations are quarantined
    at ingest"), a few rows per batch, well under `quarantine_max_share`;
  * Stripe (the fixture under sources/stripe, served as the Stripe API): every event and every
    object created in those nights appears twice in its list - the fixture server really serves
    both copies (checked) - and the extractor merges by id (ingest/stripe.py).

Then `meterline run --start 2026-11-01 --end 2026-11-03` (one run). Proved: metered units and every
billable-usage row, every invoice and invoice line (drafts' versions included), every Stripe-derived
row count (raw, staging, intermediate) and every reconciliation mart are unchanged; the only new
findings are the `quarantine` findings of exactly the metering copies (reason `duplicate_key`,
never billed), and the warehouse invariants hold (usage conservation counts the source's copies
and finds them in quarantine).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from conftest import copy_world, demo_env, run_cli
from invariants import check_all

from meterline.config import load_config
from meterline.sample.stripe_server import StripeFixture
from meterline.warehouse import connect

START, END = dt.date(2026, 11, 1), dt.date(2026, 11, 3)
NIGHTS = [START + dt.timedelta(days=i) for i in range((END - START).days + 1)]
PER_NIGHT = 3  # metering rows copied per night (the first of all twice)
STRIPE_LISTS = ("events", "invoices", "charges", "refunds", "disputes", "credit_notes",
                "balance_transactions", "payouts", "customers", "subscriptions")
BATCH = re.compile(r"batch=\S+ ")


def _epoch(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp())


def _digest(rows: list[tuple]) -> str:
    return f"{len(rows)}:" + hashlib.sha256("\n".join(sorted(map(repr, rows))).encode()).hexdigest()


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(Path(root, f).relative_to(folder)): Path(root, f).read_bytes()
            for root, _, files in os.walk(folder) for f in files}


def _state(conn) -> dict[str, object]:
    """What must not change: usage, invoices, Stripe-derived counts, reconciliation marts."""
    out: dict[str, object] = {}
    for table in ("marts.fct_billable_usage", "intermediate.int_usage_rated", "marts.fct_invoices",
                  "marts.fct_invoice_lines", "intermediate.int_invoice_adjustments",
                  "ledger.invoice_versions", "ledger.issued_invoices", "ledger.issued_invoice_lines"):
        out[table] = _digest(conn.fetchall(f"SELECT * FROM {table}"))
    out["metered units"] = int(conn.fetchone(
        "SELECT coalesce(sum(metered_quantity), 0) FROM marts.fct_billable_usage")[0])
    out["invoices"] = conn.fetchone("SELECT count(*), sum(total_minor) FROM marts.fct_invoices")
    stripe = {}
    for schema, table in conn.tables(["raw", "staging", "intermediate"]):
        if "stripe" in table:
            stripe[f"{schema}.{table}"] = int(conn.fetchone(f'SELECT count(*) FROM "{schema}"."{table}"')[0])
    stripe["raw.stripe_cursor objects"] = int(conn.fetchone(
        "SELECT coalesce(sum(objects), 0) FROM raw.stripe_cursor")[0])
    out["stripe"] = stripe
    # reconciliation marts; the findings' text names the batch a quarantined row came from, and
    # the rerun nights get new batch ids: compare findings without it
    for _schema, table in conn.tables(["marts"]):
        if table.startswith("rec_") and table != "rec_findings":
            out[f"marts.{table}"] = _digest(conn.fetchall(f'SELECT * FROM "marts"."{table}"'))
    out["findings"] = Counter(
        tuple(BATCH.sub("", v) if isinstance(v, str) else v for v in r)
        for r in conn.fetchall("SELECT * FROM marts.rec_findings"))
    out["quarantine"] = Counter(
        (r[0], r[1], r[2]) for r in conn.fetchall(
            "SELECT source, reason, row_json FROM marts.fct_quarantine"))
    return out


def _copy_metering_rows(source: Path) -> list[tuple]:
    """Insert exact copies of some rows of each night; return the copies inserted."""
    con = duckdb.connect(str(source))
    try:
        copies: list[tuple] = []
        for night in NIGHTS:
            start = dt.datetime.combine(night, dt.time())
            # per account, its late October row if any, else its largest; a late one first
            copies += con.execute(
                "SELECT hour_start, account_id, project_id, category, outcome, quantity, updated_at "
                "FROM (SELECT *, hour_start < ? AS late FROM main.usage_hourly "
                "      WHERE updated_at >= ? AND updated_at < ? AND outcome = 'accepted' "
                "      QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY hour_start < ? DESC, "
                "                                 quantity DESC, hour_start, project_id, category) = 1) "
                "ORDER BY late DESC, account_id LIMIT ?",
                [dt.datetime(2026, 11, 1), start, start + dt.timedelta(days=1), dt.datetime(2026, 11, 1),
                 PER_NIGHT]).fetchall()
        copies.append(copies[0])  # a third copy of one row
        con.executemany("INSERT INTO main.usage_hourly VALUES (?, ?, ?, ?, ?, ?, ?)", [list(r) for r in copies])
        return copies
    finally:
        con.close()


def _copy_stripe_objects(stripe_dir: Path) -> dict[str, int]:
    """Append an exact copy of every event and object created in the nights; return counts."""
    gte, lt = _epoch(START), _epoch(END + dt.timedelta(days=1))
    copied = {}
    for name in STRIPE_LISTS:
        path = stripe_dir / f"{name}.json"
        if not path.exists():
            continue
        objects = json.loads(path.read_text(encoding="utf-8"))
        extra = [o for o in objects if gte <= int(o["created"]) < lt]
        if extra:
            path.write_text(json.dumps(objects + extra), encoding="utf-8")
            copied[name] = len(extra)
    return copied


@pytest.mark.slow
def test_duplicate_metering_rows_and_stripe_events_change_no_count(demo_world: Path, tmp_path: Path) -> None:
    world = copy_world(demo_world, tmp_path)
    env = {**demo_env(), "METERLINE_CONFIG": str(world / "meterline.toml")}
    cfg = load_config(world / "meterline.toml", env=env)
    exports_before = _tree(world / "exports")
    with connect(cfg.warehouse, read_only=True) as conn:
        before = _state(conn)

    metering_copies = _copy_metering_rows(world / "sources" / "metering.duckdb")
    stripe_copies = _copy_stripe_objects(world / "sources" / "stripe")
    assert len(metering_copies) == PER_NIGHT * len(NIGHTS) + 1
    assert any(r[0] < dt.datetime(2026, 11, 1) for r in metering_copies), "no copy of a locked October hour"
    assert stripe_copies.get("events", 0) > 0 and stripe_copies.get("invoices", 0) > 0, stripe_copies
    # the fault reaches the API: the fixture server lists both copies
    served = StripeFixture(world / "sources" / "stripe")
    for name in stripe_copies:
        ids = [o["id"] for o in served.list(name, {
            "limit": ["100"], "created[gte]": [str(_epoch(START))],
            "created[lt]": [str(_epoch(END + dt.timedelta(days=1)))]})["data"]]
        assert len(ids) - len(set(ids)) == stripe_copies[name], (name, ids)

    res = run_cli("run", "--start", START.isoformat(), "--end", END.isoformat(), "--json", cwd=world, env=env)
    assert res.returncode in (0, 1), res.stderr[-3000:]  # 1: the world's planted drift
    batches = json.loads(res.stdout)["batches"]
    statuses = re.findall(r"ingest (\S+): billing \d+ rows \((\w+)\), stripe \d+ rows \((\w+)\), "
                          r"metering \d+ rows \((\w+)\)", res.stderr)

    violations: list[tuple] = []

    def check(ok: bool, *what: object) -> None:
        if not ok:
            violations.append(what)

    with connect(cfg.warehouse, read_only=True) as conn:
        after = _state(conn)
        figures = check_all(conn, world / "sources" / "metering.duckdb")
        doubled = conn.fetchall(
            "SELECT 'metering', count(*) FROM (SELECT 1 FROM raw.metering_usage_hourly GROUP BY _batch_id, "
            "hour_start, account_id, project_id, category, outcome, updated_at HAVING count(*) > 1) "
            "UNION ALL SELECT 'stripe_events', count(*) FROM (SELECT 1 FROM raw.stripe_events "
            "GROUP BY _batch_id, id HAVING count(*) > 1)")

    check(sorted(s[3] for s in statuses) == ["replaced"] * len(NIGHTS), "metering batches", statuses)
    check(doubled == [("metering", 0), ("stripe_events", 0)], "a key twice in one raw batch", doubled)
    for key in before:
        if key not in ("findings", "quarantine"):
            check(after[key] == before[key], "changed", key, before[key], after[key])

    # the only new quarantine rows and findings: one per metering copy, reason duplicate_key
    want = Counter()
    for r in metering_copies:
        row = dict(zip(("hour_start", "account_id", "project_id", "category", "outcome", "quantity",
                        "updated_at"), r, strict=True))
        want[("metering", "duplicate_key", row["account_id"], row["category"], row["hour_start"].date(),
              row["quantity"])] += 1
    new_quarantine = after["quarantine"] - before["quarantine"]
    got = Counter()
    for (source, reason, row_json), n in new_quarantine.items():
        row = json.loads(row_json) if row_json else {}
        hour = row.get("hour_start")
        got[(source, reason, row.get("account_id"), row.get("category"),
             dt.datetime.fromisoformat(hour).date() if hour else None, row.get("quantity"))] += n
    check(got == want, "new quarantine rows", got, want)
    check(not (before["quarantine"] - after["quarantine"]), "quarantine rows lost")
    new_findings = after["findings"] - before["findings"]
    check(not (before["findings"] - after["findings"]), "findings lost", before["findings"] - after["findings"])
    check(sum(new_findings.values()) == len(metering_copies)
          and all(f[0] == "quarantine" and f[1] == "quarantined" and f[7] == "duplicate_key" for f in new_findings),
          "new findings other than the copies' quarantine", new_findings)
    check(_tree(world / "exports") == exports_before, "exports changed")

    units = sum(r[5] for r in metering_copies)
    print(f"duplicates: {len(metering_copies)} metering copies ({units} units) quarantined as duplicate_key, "
          f"{sum(got.values())} found; {sum(stripe_copies.values())} Stripe copies served "
          f"({', '.join(f'{n} {k}' for k, n in sorted(stripe_copies.items()))}), deduplicated; batches {batches}, "
          f"Stripe nights {[s[2] for s in statuses]}")
    print(f"duplicates: metered units {before['metered units']} -> {after['metered units']}, invoices "
          f"{before['invoices']} -> {after['invoices']}, Stripe rows "
          f"{sum(before['stripe'].values())} -> {sum(after['stripe'].values())} over {len(after['stripe'])} "
          f"counts, findings {sum(before['findings'].values())} -> {sum(after['findings'].values())} "
          f"(+{sum(new_findings.values())} quarantine duplicate_key), {len(violations)} violations")
    assert not violations, violations
    assert all(not f.violations for f in figures)
