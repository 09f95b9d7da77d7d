"""The stage runner: the same stage functions the CLI and the Airflow DAGs call.

nightly (ingest → dbt build → reconcile), close (issue, export, lock), status and the demo.
Each stage is idempotent per data interval; nothing here reads the wall clock for business
logic (the clock only stamps `_extracted_at`, an audit column).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from meterline import dbt
from meterline.config import Config, load_config
from meterline.errors import ConfigError, IntervalError, MeterlineError, StageError
from meterline.ledger import loaded_through, record_invoice_versions
from meterline.runlock import exclusive_run
from meterline.warehouse import connect, qualified, quote_ident

Progress = Callable[[str], None]

SAMPLE_STRIPE_KEY = "sk_test_meterline_sample"
METERLINE_SCHEMAS = ("raw", "ledger", "staging", "intermediate", "marts", "seeds", "main")


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def stripe_access(cfg: Config) -> Iterator[tuple[Any, str]]:
    """A Stripe client: against the sample world's local server, or the configured API base."""
    from meterline.stripe_api import DEFAULT_TIMEOUT_SECONDS, make_client

    timeout = float(cfg.values["sources"].get("stripe_timeout_seconds", DEFAULT_TIMEOUT_SECONDS))
    fixture = cfg.get("sources", "stripe_fixture")
    if fixture:
        from meterline.sample.stripe_server import serve_stripe_fixture

        with serve_stripe_fixture(cfg.path("sources", "stripe_fixture")) as base_url:
            key = cfg.stripe_api_key or SAMPLE_STRIPE_KEY
            yield make_client(key, base_url, timeout=timeout), key
    else:
        key = cfg.stripe_api_key
        yield make_client(key, cfg.get("sources", "stripe_api_base"), timeout=timeout), key


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        raise IntervalError(f"--end {end} is before --start {start}")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def check_days(cfg: Config, days: list[dt.date]) -> None:
    from ingest.sql_sources import metering_coverage

    first, last = metering_coverage(cfg)
    outside = [d for d in days if d < first or d > last]
    if outside:
        raise IntervalError(
            f"date {outside[0]} is outside the sources (metering covers {first} to {last})"
        )


EVENTS_RETENTION_DAYS = 30


def stripe_gap_warning(conn: Any, day: dt.date) -> str | None:
    """A warning when Stripe updates may have been missed before night `day`.

    The Events API keeps 30 days: if the Stripe data loaded before `day` ends more than that
    before it (or nothing was ever loaded), updates of older objects can only come from a
    resync. Data-driven (the batch ledger), never the clock.
    """
    start = dt.datetime.combine(day, dt.time())
    last = loaded_through(conn, ["stripe", "stripe_resync"], not_after=start)
    if last is None:
        return (f"stripe: no Stripe data before {day} is loaded; objects created earlier "
                f"(customers, subscriptions) come in with `meterline resync stripe --until {day}`")
    if (start - last).days > EVENTS_RETENTION_DAYS:
        return (f"stripe: the Stripe data before {day} ends on {last:%Y-%m-%d}, more than "
                f"{EVENTS_RETENTION_DAYS} days earlier: the Events API no longer holds the updates "
                f"in between; run `meterline resync stripe --since {last:%Y-%m-%d} --until {day}`")
    return None


@exclusive_run("ingest")
def ingest_days(cfg: Config, days: list[dt.date], progress: Progress = _stderr) -> list[dict[str, Any]]:
    from ingest.load import ensure_raw
    from ingest.run import ingest_day

    out = []
    extracted_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # audit stamp only
    with stripe_access(cfg) as (client, key), connect(cfg.warehouse_for("ingest")) as conn:
        ensure_raw(conn, ledger=_one_login(cfg))
        for i, day in enumerate(days, 1):
            if i == 1 and (warning := stripe_gap_warning(conn, day)):
                progress(f"WARNING {warning}")
            results = ingest_day(cfg, conn, day, client, extracted_at, stripe_api_key=key)
            progress(
                f"[{i}/{len(days)}] ingest {day}: "
                + ", ".join(f"{r.source} {r.rows} rows ({r.action})" for r in results)
            )
            out.extend(
                {"source": r.source, "day": day.isoformat(), "batch_id": r.batch_id,
                 "rows": r.rows, "action": r.action}
                for r in results
            )
    return out


@exclusive_run("stripe resync")
def resync_stripe(cfg: Config, since: dt.date | None = None, until: dt.date | None = None,
                  progress: Progress = _stderr) -> dict[str, Any]:
    """List every Stripe object created in [since, until) and load it as one `stripe_resync`
    batch: the current version of objects whose updates the Events API no longer holds.

    `since` defaults to the beginning of time; `until` to the end of the latest loaded Stripe
    night (never the clock), so the next nightly continues where the resync stops.
    """
    from ingest.load import ensure_raw, load_batch
    from ingest.stripe import configured_resources, extract_stripe_resync, reader_from_config

    start = dt.datetime.combine(since, dt.time()) if since else dt.datetime(1970, 1, 1)
    with connect(cfg.warehouse_for("ingest")) as conn:
        ensure_raw(conn, ledger=_one_login(cfg))
        if until is None:
            loaded = loaded_through(conn, ["stripe"])
            if loaded is None:
                raise IntervalError(
                    "no Stripe night is loaded yet: give --until YYYY-MM-DD (exclusive) "
                    "or run a night first")
            end = loaded
        else:
            end = dt.datetime.combine(until, dt.time())
    if end <= start:
        raise IntervalError(f"resync interval is empty: {start:%Y-%m-%d} .. {end:%Y-%m-%d}")
    progress(f"resync stripe: listing every object created in [{start:%Y-%m-%d}, {end:%Y-%m-%d}) ...")
    extracted_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # audit stamp only
    with stripe_access(cfg) as (client, key):
        sources = cfg.values["sources"]
        tables = extract_stripe_resync(reader_from_config(client, key, sources), start, end,
                                       configured_resources(sources))
    with connect(cfg.warehouse_for("ingest")) as conn:
        result = load_batch(conn, "stripe_resync", start, end, tables, extracted_at)
    progress(f"resync stripe: {result.rows} rows ({result.action}); the next `meterline run` "
             "rebuilds the models with them")
    return {
        "source": result.source, "since": start.isoformat(), "until": end.isoformat(),
        "batch_id": result.batch_id, "action": result.action, "rows": result.rows,
        "row_counts": {k: v for k, v in result.row_counts.items() if k != "stripe_cursor"},
    }


@exclusive_run("reconcile")
def reconcile_now(cfg: Config, alert: bool = True) -> dict[str, Any]:
    """Run the GX checkpoint over the reconciliation marts as they are, record the results and
    (with `alert`) alert engineers. The summary's `alerts.failed` says an alert channel failed."""
    from reconcile.alerts import notify
    from reconcile.checks import reconcile

    # Row-level contract violations are held back per batch by ingest (and fail that batch past
    # the share). Here only the reasons that need other sources (dbt-level: unknown account or
    # outcome) are measured, against every metering row ingested.
    dbt_level = ("unknown_account", "unknown_outcome")
    with connect(cfg.warehouse_for("ledger")) as conn:
        result = reconcile(conn, tolerance=cfg.tolerance,
                           freshness_max_hours=cfg.get("reconcile", "freshness_max_hours"),
                           gx_dir=cfg.path("reconcile", "gx_dir"))
        report = notify(conn, cfg, result.as_of, result.drift,
                        [{"check_name": c.check_name, "detail": c.detail} for c in result.errors]) if alert else None
        metering_rows = conn.fetchone(
            f"SELECT count(*) FROM {qualified('raw', 'metering_usage_hourly')}")[0]
        metering_rows += conn.fetchone(
            f"SELECT count(*) FROM {qualified('raw', 'quarantine')} "
            "WHERE raw_table = 'metering_usage_hourly'")[0]
    share = cfg.get("pipeline", "quarantine_max_share")
    by_reason: dict[str, int] = {}
    for f in result.quarantined:
        by_reason[f["reason"]] = by_reason.get(f["reason"], 0) + 1
    summary = {
        "as_of": result.as_of.isoformat(),
        "checks": {c.check_name: c.outcome for c in result.checks},
        "check_errors": [f"{c.check_name}: {c.detail}" for c in result.errors],
        "drift_flagged": len(result.drift),
        "quarantined": by_reason,
        "findings": result.findings,
        "data_docs": result.data_docs,
        "alerts": report.to_dict() if report is not None else None,
    }
    late_q = {r: n for r, n in by_reason.items() if r in dbt_level}
    total_q = sum(late_q.values())
    if metering_rows and total_q > share * metering_rows:
        worst = max(late_q, key=lambda k: late_q[k])
        raise StageError(
            f"metering source: {total_q} of {metering_rows} rows quarantined "
            f"(over the {share} limit), mostly {worst!r}: see marts.fct_quarantine"
        )
    return summary


@exclusive_run("reconcile")
def reconcile_rebuilt(cfg: Config, alert: bool = True, progress: Progress = _stderr) -> dict[str, Any]:
    """`meterline reconcile`: rebuild the reconciliation marts (explanations and tolerances
    apply), then reconcile and alert. Reads no source."""
    from ingest.load import ensure_raw

    with connect(cfg.warehouse_for("ledger")) as conn:
        ensure_raw(conn)
    progress("dbt build (reconciliation) ...")
    dbt.build(cfg, ["--select", "stg_ledger__recon_explanations", "path:models/marts/reconciliation"])
    progress("reconcile ...")
    return reconcile_now(cfg, alert=alert)


def reconcile_details(cfg: Config, check: str | None = None) -> dict[str, Any]:
    """The last reconciliation's check results and findings (of `check`), from the ledger."""
    from ingest.load import ensure_raw
    from reconcile.checks import CHECKS

    if check is not None and check not in CHECKS and check != "quarantine":
        raise ConfigError(f"unknown check {check!r} (known: {', '.join([*CHECKS, 'quarantine'])})")
    with connect(cfg.warehouse_for("ledger")) as conn:
        ensure_raw(conn)
        last = conn.fetchone(f"SELECT max(as_of) FROM {qualified('ledger', 'recon_check_results')}")
        if not last or last[0] is None:
            raise ConfigError("nothing reconciled yet: run meterline run --date D first")
        as_of = last[0]
        where, params = "as_of = ?", [as_of]
        if check:
            where, params = where + " AND check_name = ?", [as_of, check]
        checks = conn.fetch_dicts(
            f"SELECT check_name, outcome, observed_value, unexpected_rows, detail "
            f"FROM {qualified('ledger', 'recon_check_results')} WHERE as_of = ? "
            + ("AND check_name IN (?, ?) " if check else "") + "ORDER BY check_name",
            [as_of, f"status_{check}", check] if check else [as_of])
        findings = conn.fetch_dicts(
            f"SELECT check_name, status, account_id, category, period, day, object_id, reason, detail, "
            f"difference, unit FROM {qualified('ledger', 'recon_findings')} WHERE {where} "
            "ORDER BY check_name, status, account_id, category, period, day, object_id, reason", params)
    for f in findings:
        if f.get("difference") is not None:
            f["difference"] = str(f["difference"].normalize() if hasattr(f["difference"], "normalize")
                                  else f["difference"])
    return {"as_of": str(as_of), "check": check, "checks": checks, "findings": findings}


@exclusive_run("explain")
def explain(cfg: Config, check: str, keys: dict[str, str | None], reason: str, explained_by: str,
            until: dt.date | None) -> dict[str, Any]:
    from ingest.load import ensure_raw
    from reconcile.checks import EXPLAINABLE
    from reconcile.explain import record

    with connect(cfg.warehouse_for("ledger")) as conn:
        ensure_raw(conn)
        return record(conn, check, keys, reason, explained_by, until, EXPLAINABLE)


def explanations(cfg: Config) -> list[dict[str, Any]]:
    from ingest.load import ensure_raw
    from reconcile.explain import listing

    with connect(cfg.warehouse_for("ledger")) as conn:
        ensure_raw(conn)
        return listing(conn)


@exclusive_run("explain --revoke")
def revoke_explanation(cfg: Config, explanation_id: str) -> dict[str, Any]:
    from ingest.load import ensure_raw
    from reconcile.explain import revoke

    with connect(cfg.warehouse_for("ledger")) as conn:
        ensure_raw(conn)
        return revoke(conn, explanation_id)


def _one_login(cfg: Config) -> bool:
    """Whether ingest and the ledger's bookkeeping log in alike (one login for the warehouse, as
    on DuckDB): then ingest makes the ledger's tables too, as it always has; with a login per
    stage it makes raw's only (deploy/postgres-roles.sql) and the ledger stage makes its own."""
    return cfg.warehouse_for("ingest") == cfg.warehouse_for("ledger")


def _ensure_ledger(cfg: Config) -> None:
    """The ledger's tables, which dbt reads as sources, made (as the ledger login) before a build:
    the ingest stage makes raw's only."""
    from meterline.ledger import ensure_ledger

    with connect(cfg.warehouse_for("ledger")) as conn:
        ensure_ledger(conn)


@exclusive_run("nightly")
def nightly(cfg: Config, days: list[dt.date], progress: Progress = _stderr) -> dict[str, Any]:
    """Ingest every interval in `days`, then one dbt build and one reconciliation."""
    check_days(cfg, days)
    batches = ingest_days(cfg, days, progress)
    progress("dbt build ...")
    _ensure_ledger(cfg)
    res = dbt.build(cfg)
    progress(f"dbt build: {res.nodes} nodes ok")
    with connect(cfg.warehouse_for("ledger")) as conn:
        record_invoice_versions(conn)
    progress("reconcile ...")
    rec = reconcile_now(cfg)
    progress(
        f"reconcile as of {rec['as_of']}: {rec['drift_flagged']} drift finding(s), "
        f"checks {rec['checks']}"
    )
    return {
        "days": [d.isoformat() for d in days],
        "batches": {
            action: sum(1 for b in batches if b["action"] == action)
            for action in sorted({b["action"] for b in batches})
        },
        "dbt_nodes": res.nodes,
        "reconciliation": rec,
    }


@exclusive_run("close")
def close(cfg: Config, period: str, progress: Progress = _stderr) -> dict[str, Any]:
    from exports.close import check_closable, close_period, is_locked, parse_period
    from ingest.load import ensure_raw

    parse_period(period)
    with connect(cfg.warehouse_for("ledger")) as conn:
        ensure_raw(conn)
        if is_locked(conn, period):
            return close_period(conn, period, cfg.exports_dir)
        check_closable(conn, period)  # before the dbt build: fail fast
    progress(f"close {period}: dbt build ...")
    dbt.build(cfg)
    with connect(cfg.warehouse_for("ledger")) as conn:
        result = close_period(conn, period, cfg.exports_dir)
    done = ("invoices already issued at the first close, left as they are" if result["action"] == "reclosed"
            else f"{result['invoices']} invoices issued")
    progress(f"close {period}: {done}; exports written; rebuilding marts ...")
    dbt.build(cfg)
    with connect(cfg.warehouse_for("ledger")) as conn:
        record_invoice_versions(conn)
    return result


@exclusive_run("close --reopen")
def reopen(cfg: Config, period: str, reason: str, progress: Progress = _stderr) -> dict[str, Any]:
    from exports.close import reopen_period
    from ingest.load import ensure_raw

    with connect(cfg.warehouse_for("ledger")) as conn:
        ensure_raw(conn)
        result = reopen_period(conn, period, reason)
    progress(f"reopen {period}: rebuilding marts ...")
    dbt.build(cfg)
    return result


@exclusive_run("void")
def void(cfg: Config, invoice_id: str, reason: str) -> dict[str, Any]:
    """Void an issued invoice (meterline.ledger.void_invoice). The marts show it at the next
    dbt build (nightly or close): this only writes the ledger, in one transaction."""
    from ingest.load import ensure_raw
    from meterline.ledger import void_invoice

    with connect(cfg.warehouse_for("ledger")) as conn:
        ensure_raw(conn)
        return void_invoice(conn, invoice_id, reason)


def status(cfg: Config) -> dict[str, Any]:
    from ingest.load import ensure_raw

    with connect(cfg.warehouse_for("ledger")) as conn:
        ensure_raw(conn)
        sources = {
            r["source"]: {"batches": r["n"], "first": str(r["first"]), "last": str(r["last"]),
                          "rows": int(r["rows"] or 0)}
            for r in conn.fetch_dicts(
                f"SELECT source, count(*) AS n, min(interval_start) AS first, max(interval_start) AS last, "
                f"sum(row_count) AS rows FROM {qualified('raw', 'batch_ledger')} "
                "WHERE status = 'loaded' GROUP BY source ORDER BY source")
        }
        locked = [r[0] for r in conn.fetchall(
            f"SELECT period FROM {qualified('ledger', 'period_locks')} ORDER BY period")]
        last = conn.fetchone(f"SELECT max(as_of) FROM {qualified('ledger', 'recon_check_results')}")
        checks, findings = {}, 0
        if last and last[0] is not None:
            checks = {r[0]: r[1] for r in conn.fetchall(
                f"SELECT check_name, outcome FROM {qualified('ledger', 'recon_check_results')} "
                "WHERE as_of = ? ORDER BY check_name", [last[0]])}
            findings = conn.fetchone(
                f"SELECT count(*) FROM {qualified('ledger', 'recon_findings')} "
                "WHERE as_of = ? AND check_name <> 'quarantine'", [last[0]])[0]
    return {
        "warehouse": cfg.warehouse.redacted(),
        "sources": sources,
        "closed_periods": locked,
        "last_reconciliation": {"as_of": str(last[0]) if last and last[0] else None,
                                "checks": checks, "drift_findings": findings},
    }


# ---------------------------------------------------------------------------------------
# demo


def month_plan(first: dt.date, last: dt.date) -> list[tuple[list[dt.date], str | None]]:
    """Split [first, last] into runs that end at month ends followed by a close of that month."""
    plan: list[tuple[list[dt.date], str | None]] = []
    cur: list[dt.date] = []
    day = first
    while day <= last:
        cur.append(day)
        nxt = day + dt.timedelta(days=1)
        if nxt.day == 1 and cur[0].day == 1 and nxt <= last:
            plan.append((cur, f"{day:%Y-%m}"))
            cur = []
        elif nxt.day == 1 and cur[0].day != 1:
            plan.append((cur, None))
            cur = []
        day = nxt
    if cur:
        plan.append((cur, None))
    return plan


def _prepare_demo_dir(directory: Path) -> None:
    marker = directory / ".meterline-demo"
    if directory.exists() and any(directory.iterdir()) and not marker.exists():
        raise IntervalError(f"{directory} is not empty and is not a meterline demo folder")
    if marker.exists():
        for name in ("sources", "exports", ".meterline", "manifest.json", "meterline.toml"):
            p = directory / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    marker.write_text("made by `meterline demo`; the demo may wipe and rebuild this folder\n")


def demo(directory: Path, seed: int = 7, accounts: int = 40, days: int = 34,
         start: dt.date = dt.date(2026, 10, 1), progress: Progress = _stderr,
         plant: bool = True) -> dict[str, Any]:
    """Build the sample world under `directory`, run every night and close each full month."""
    from meterline.config import parse_db_url
    from meterline.sample.generate import generate
    from reconcile.checks import compare_with_manifest

    directory = directory.resolve()
    wh_url = os.environ.get("METERLINE_WAREHOUSE", "duckdb:///.meterline/warehouse.duckdb")
    target = parse_db_url(wh_url, directory, "METERLINE_WAREHOUSE")
    _prepare_demo_dir(directory)
    toml = [
        "# written by `meterline demo`: the sample world's sources, warehouse and exports",
        "[sources]",
        'stripe_fixture = "sources/stripe"',
    ]
    prefix = "src"
    progress(f"demo: generating the sample world (seed {seed}, {accounts} accounts, {days} days) ...")
    if target.kind == "postgres":
        manifest = generate(directory, seed=seed, accounts=accounts, days=days, start=start,
                            postgres_url=wh_url, pg_schema_prefix=prefix, plant=plant)
        safe_url = wh_url if not target.password else target.redacted()
        toml += [
            f'metering_url = "{safe_url}"', f'metering_schema = "{prefix}_metering"',
            f'billing_url = "{safe_url}"', f'billing_schema = "{prefix}_billing"',
            "", "[warehouse]", f'url = "{safe_url}"',
        ]
    else:
        manifest = generate(directory, seed=seed, accounts=accounts, days=days, start=start,
                            plant=plant)
        toml += [
            'metering_url = "duckdb:///sources/metering.duckdb"',
            'billing_url = "duckdb:///sources/billing.duckdb"',
            "", "[warehouse]", 'url = "duckdb:///.meterline/warehouse.duckdb"',
        ]
    toml += ["", "[pipeline]", 'exports_dir = "exports"', 'state_dir = ".meterline"', ""]
    (directory / "meterline.toml").write_text("\n".join(toml), encoding="utf-8")
    cfg = load_config(directory / "meterline.toml")
    if target.kind == "postgres":
        with connect(cfg.warehouse) as conn:
            for schema in METERLINE_SCHEMAS[:-1]:
                conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")

    first = dt.date.fromisoformat(manifest["first_day"])
    last = dt.date.fromisoformat(manifest["last_day"])
    closed, exports = [], []
    last_run: dict[str, Any] = {}
    # onboarding: the Stripe account predates the first night, so its history (customers,
    # subscriptions) comes in once through a resync up to the first day
    resync = resync_stripe(cfg, until=first, progress=progress)
    for run_days, period in month_plan(first, last):
        progress(f"demo: nightly {run_days[0]} .. {run_days[-1]}")
        last_run = nightly(cfg, run_days, progress)
        if period:
            result = close(cfg, period, progress)
            closed.append(period)
            exports.extend(result.get("exports", []))
    # month_plan never ends on a close (a month closes only when nights follow it), so the last
    # nightly's reconciliation already compares Stripe with the issued invoices
    rec = last_run["reconciliation"]
    cmp = compare_with_manifest(rec["findings"], manifest)
    with connect(cfg.warehouse) as conn:
        inv = conn.fetch_dicts(
            f"SELECT currency, count(*) AS n, sum(total_minor) AS total FROM {qualified('ledger', 'issued_invoices')} "
            "GROUP BY currency ORDER BY currency")
    summary = {
        "dir": str(directory),
        "warehouse": cfg.warehouse.redacted(),
        "accounts": manifest["accounts"],
        "days": manifest["days"],
        "first_day": manifest["first_day"],
        "last_day": manifest["last_day"],
        "closed_periods": closed,
        "stripe_history_rows": resync["rows"],
        "invoices": sum(int(r["n"]) for r in inv),
        "invoice_totals_minor": {r["currency"]: int(r["total"]) for r in inv},
        "drift_flagged": rec["drift_flagged"],
        "quarantined": rec["quarantined"],
        "check_errors": rec["check_errors"],
        "checks": rec["checks"],
        "data_docs": rec.get("data_docs"),
        "discrepancies_planted": cmp["planted"],
        "discrepancies_found": cmp["found"],
        "discrepancies_missed": cmp["missed"],
        "findings": [f for f in rec["findings"] if f["check_name"] != "quarantine"],
        "false_positives": len(cmp["false_positives"]),
        "false_positive_findings": cmp["false_positives"],
        "exports": exports,
    }
    (directory / ".meterline" / "demo-summary.json").write_text(
        json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return summary


# ---------------------------------------------------------------------------------------
# Airflow: the nightly split into one stage per task (dags/meterline_nightly.py). The three
# sources are extracted in parallel into staged Arrow files (no warehouse access), then one task
# loads them, as `ingest_days` does, one transaction per source; the CLI keeps `nightly`.

NIGHTLY_SOURCES = ("metering", "billing", "stripe")
LOAD_ORDER = ("billing", "stripe", "metering")  # metering last: its batch marks the night ingested
EXTRACT_MANIFEST = "extract.json"


def _utc_naive(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo is not None else t


def night_of(interval_start: dt.datetime, interval_end: dt.datetime) -> dt.date:
    """The UTC day a data interval covers. Anything but exactly one day from midnight UTC is
    refused: a run processes one night, never a guess at one."""
    start, end = _utc_naive(interval_start), _utc_naive(interval_end)
    if start.time() != dt.time() or end - start != dt.timedelta(days=1):
        raise IntervalError(
            f"data interval {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} (UTC) is not one day "
            "from midnight UTC: a nightly run processes exactly one day")
    return start.date()


def period_of(interval_start: dt.datetime, interval_end: dt.datetime) -> str:
    """The billing period (YYYY-MM) a data interval covers: exactly one calendar month, UTC."""
    start, end = _utc_naive(interval_start), _utc_naive(interval_end)
    nxt = dt.datetime(start.year + start.month // 12, start.month % 12 + 1, 1)
    if start.time() != dt.time() or start.day != 1 or end != nxt:
        raise IntervalError(
            f"data interval {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} (UTC) is not one "
            "calendar month: a month close processes exactly one period")
    return f"{start:%Y-%m}"


def nights_missing(cfg: Config, period: str) -> list[dt.date]:
    """The nights of billing period `period` (YYYY-MM), its last night aside, whose metering
    batch is not loaded yet: what the month close waits for before it runs the last night
    itself. The same test as the close's (`exports.close.missing_nights`). Reads only.

    Raises IntervalError when a missing night lies before the metering source's first day: it
    can never be loaded, so the period can never close. On DuckDB it holds the warehouse's run
    lock for the moment it reads (DuckDB has one writer process): RunLockedError when a run
    holds it (try again later). PostgreSQL needs no lock to read."""
    from exports.close import missing_nights, parse_period

    start, end = parse_period(period)
    last = end - dt.timedelta(days=1)
    target = cfg.warehouse_for("ledger")

    def read() -> list[dt.date]:
        with connect(target, read_only=True) as conn:
            if ("raw", "batch_ledger") not in conn.tables(["raw"]):
                return days_between(start, last)[:-1]  # nothing was ever loaded
            return missing_nights(conn, start, last)

    if target.kind == "duckdb":
        assert target.path is not None
        if not target.path.exists():
            missing = days_between(start, last)[:-1]
        else:
            from meterline.runlock import exclusive

            with exclusive(target, f"month close {period}: which nights are loaded"):
                missing = read()
    else:
        missing = read()
    if missing:
        from ingest.sql_sources import metering_coverage

        try:
            first, _ = metering_coverage(cfg)
        except MeterlineError:
            first = None  # an unreadable source is the nightly's to report; keep waiting
        if first is not None and missing[0] < first:
            raise IntervalError(
                f"cannot close {period}: night {missing[0]} is before the metering source's first "
                f"day {first} and can never be loaded")
    return missing


def extract_dir(cfg: Config, day: dt.date, source: str | None = None) -> Path:
    """Where the night's staged extracts live (under `pipeline.state_dir`)."""
    base = cfg.state_dir / "extracts" / day.isoformat()
    return base / source if source else base


def _extract_tables(cfg: Config, source: str, day: dt.date) -> dict[str, Any]:
    """One source's extract for `day`, as `ingest.run.ingest_day` builds it."""
    from ingest.sql_sources import extract_billing, extract_metering, probe

    if source == "metering":
        probe(cfg, "metering")
        return extract_metering(cfg, day)
    if source == "billing":
        probe(cfg, "billing")
        return extract_billing(cfg, day)
    from ingest.stripe import configured_resources, extract_stripe_interval, reader_from_config

    start = dt.datetime.combine(day, dt.time())
    sources = cfg.values["sources"]
    with stripe_access(cfg) as (client, key):
        return extract_stripe_interval(reader_from_config(client, key, sources), start,
                                       start + dt.timedelta(days=1), configured_resources(sources))


def _stage_table(folder: Path, name: str, data: Any, chunk_rows: int) -> tuple[list[str], int]:
    """Stream one raw table's chunks into Arrow IPC files (a new part when the schema changes)."""
    import pyarrow as pa

    from ingest.chunks import iter_chunks

    files: list[str] = []
    rows = 0
    writer = None
    schema = None
    try:
        for batch in iter_chunks(data, chunk_rows):
            if writer is None or batch.schema != schema:
                if writer is not None:
                    writer.close()
                files.append(f"{name}.{len(files):04d}.arrow")
                schema = batch.schema
                writer = pa.ipc.new_file(str(folder / files[-1]), schema)
            writer.write_batch(batch)
            rows += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    return files, rows


def extract_source(cfg: Config, source: str, day: dt.date, progress: Progress = _stderr) -> dict[str, Any]:
    """Extract one source's data interval `day` into staged Arrow files; the warehouse is not
    touched. A rerun replaces the staged extract; a failure leaves no staged extract behind."""
    if source not in NIGHTLY_SOURCES:
        raise ConfigError(f"unknown source {source!r} (known: {', '.join(NIGHTLY_SOURCES)})")
    if source == "metering":
        check_days(cfg, [day])
    target = extract_dir(cfg, day, source)
    tmp = target.with_name(f".{source}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    extracted_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # audit stamp only
    tables: dict[str, dict[str, Any]] = {}
    try:
        chunk_rows = cfg.get("pipeline", "chunk_rows")
        for name, data in sorted(_extract_tables(cfg, source, day).items()):
            files, rows = _stage_table(tmp, name, data, chunk_rows)
            tables[name] = {"files": files, "rows": rows}
        (tmp / EXTRACT_MANIFEST).write_text(json.dumps(
            {"source": source, "day": day.isoformat(), "extracted_at": extracted_at.isoformat(),
             "tables": tables}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = {name: t["rows"] for name, t in tables.items()}
    progress(f"extract {source} {day}: {sum(rows.values())} rows staged")
    return {"source": source, "day": day.isoformat(), "rows": rows}


def _staged(cfg: Config, source: str, day: dt.date) -> tuple[dt.datetime, dict[str, Any]]:
    """A staged extract: its extraction stamp and, per raw table, a lazy iterator of its chunks."""
    import pyarrow as pa

    folder = extract_dir(cfg, day, source)
    try:
        manifest = json.loads((folder / EXTRACT_MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StageError(f"{source} source: no staged extract for {day} in {folder.parent} "
                         f"(run the night's extract_{source} task first)") from None

    def batches(files: list[str]) -> Iterator[Any]:
        for name in files:
            with pa.OSFile(str(folder / name), "rb") as f:
                reader = pa.ipc.open_file(f)
                for i in range(reader.num_record_batches):
                    yield reader.get_batch(i)

    tables = {name: batches(t["files"]) for name, t in manifest["tables"].items()}
    return dt.datetime.fromisoformat(manifest["extracted_at"]), tables


def _loaded_batches(conn: Any, start: dt.datetime, end: dt.datetime) -> dict[str, dict[str, Any]]:
    """The night's loaded batch of each nightly source (batch id and row count)."""
    rows = conn.fetch_dicts(
        f"SELECT source, batch_id, row_count FROM {qualified('raw', 'batch_ledger')} "
        "WHERE status = 'loaded' AND interval_start = ? AND interval_end = ? ORDER BY source",
        [start, end])
    return {r["source"]: r for r in rows if r["source"] in NIGHTLY_SOURCES}


@exclusive_run("load")
def load_extracts(cfg: Config, day: dt.date, progress: Progress = _stderr) -> list[dict[str, Any]]:
    """Load the night's three staged extracts into `raw.*`, as `ingest_days` loads them: one
    batch and transaction per source, metering last, identical batches skipped. The staged
    files are removed once every source is loaded.

    Nothing staged while the night's three batches are loaded (a retry after the staged files
    were removed, a cleared `load` task) is a success that changes nothing: every source comes
    back with the action `already_loaded` and its loaded batch. A partly staged night refuses,
    naming the source whose extract is missing."""
    from ingest.load import ensure_raw, load_batch

    start = dt.datetime.combine(day, dt.time())
    end = start + dt.timedelta(days=1)
    if not any((extract_dir(cfg, day, source) / EXTRACT_MANIFEST).is_file() for source in LOAD_ORDER):
        with connect(cfg.warehouse_for("ingest")) as conn:
            ensure_raw(conn, ledger=_one_login(cfg))
            loaded = _loaded_batches(conn, start, end)
        if len(loaded) == len(LOAD_ORDER):
            out = [{"source": s, "day": day.isoformat(), "batch_id": loaded[s]["batch_id"],
                    "rows": int(loaded[s]["row_count"]), "action": "already_loaded"} for s in LOAD_ORDER]
            progress(f"load {day}: nothing staged and the night's three batches are already loaded: "
                     "nothing to do (rerun the extract tasks to extract the night again)")
            return out
    staged = {source: _staged(cfg, source, day) for source in LOAD_ORDER}  # all there, or nothing
    options = {"max_quarantine_share": cfg.get("pipeline", "quarantine_max_share"),
               "chunk_rows": cfg.get("pipeline", "chunk_rows")}
    out = []
    with connect(cfg.warehouse_for("ingest")) as conn:
        ensure_raw(conn, ledger=_one_login(cfg))
        if warning := stripe_gap_warning(conn, day):
            progress(f"WARNING {warning}")
        for source in LOAD_ORDER:
            extracted_at, tables = staged[source]
            r = load_batch(conn, source, start, end, tables, extracted_at, **options)
            out.append({"source": r.source, "day": day.isoformat(), "batch_id": r.batch_id,
                        "rows": r.rows, "action": r.action})
    progress(f"load {day}: " + ", ".join(f"{b['source']} {b['rows']} rows ({b['action']})" for b in out))
    shutil.rmtree(extract_dir(cfg, day), ignore_errors=True)
    return out


@exclusive_run("dbt build")
def build_models(cfg: Config, progress: Progress = _stderr) -> dict[str, Any]:
    """The nightly's dbt build (every model and data test), then the draft invoice versions."""
    progress("dbt build ...")
    _ensure_ledger(cfg)
    res = dbt.build(cfg)
    with connect(cfg.warehouse_for("ledger")) as conn:
        record_invoice_versions(conn)
    progress(f"dbt build: {res.nodes} nodes ok")
    return {"dbt_nodes": res.nodes}


@exclusive_run("alert")
def alert_reconciliation(cfg: Config, as_of: str | None = None) -> dict[str, Any]:
    """Alert engineers about the reconciliation recorded at `as_of` (default: the latest), read
    back from the ledger: the same findings and errors `reconcile_now` alerts on."""
    from ingest.load import ensure_raw
    from reconcile.alerts import notify
    from reconcile.checks import KEY_FIELDS

    with connect(cfg.warehouse_for("ledger")) as conn:
        ensure_raw(conn)
        results = qualified("ledger", "recon_check_results")
        when = (dt.datetime.fromisoformat(as_of) if as_of
                else conn.fetchone(f"SELECT max(as_of) FROM {results}")[0])
        if when is None:
            raise StageError("nothing reconciled yet: no reconciliation to alert on")
        cols = ", ".join(["check_name", "status", *KEY_FIELDS, "detail", "difference", "unit"])
        findings = conn.fetch_dicts(
            f"SELECT {cols} FROM {qualified('ledger', 'recon_findings')} "
            f"WHERE as_of = ? AND check_name <> 'quarantine' ORDER BY {cols}", [when])
        errors = conn.fetch_dicts(
            f"SELECT check_name, detail FROM {results} WHERE as_of = ? AND outcome = 'error' "
            "ORDER BY check_name", [when])
        report = notify(conn, cfg, when, findings, errors)
    return {"as_of": when.isoformat(), "drift_flagged": len(findings),
            "check_errors": [f"{e['check_name']}: {e['detail']}" for e in errors],
            "alerts": report.to_dict(), "alerts_failed": report.reasons}


@exclusive_run("stripe push")
def push_invoices(cfg: Config, period: str, localstripe: bool = False,
                  progress: Progress = _stderr) -> dict[str, Any]:
    """Push the closed `period`'s issued invoices to Stripe (exports.stripe_push, replay-safe).
    Objects left unconfirmed fail the stage: the next run resumes from the outbox."""
    from exports.stripe_push import push_period
    from ingest.load import ensure_raw

    with connect(cfg.warehouse_for("ledger")) as conn:
        ensure_raw(conn)
        report = push_period(conn, cfg, period, localstripe=localstripe)
    summary = {k: v for k, v in report.to_dict().items() if k != "invoices"}
    summary["invoices"] = len(report.invoices)
    progress(f"stripe push {period}: {report.created} created, {report.found_existing} found, "
             f"{report.confirmed} confirmed, {report.skipped} skipped, {report.failed} failed")
    if report.failed:
        shown = "; ".join(report.errors[:3]) or "see ledger.stripe_outbox"
        raise StageError(f"stripe push {period}: {report.failed} object(s) left unconfirmed: {shown}")
    return summary


@exclusive_run("finance report")
def finance_report(cfg: Config, kind: str, when: str, progress: Progress = _stderr) -> dict[str, Any]:
    """The DAGs' finance report: the daily flash for a night (`kind` daily, `when` YYYY-MM-DD) or
    the month-end pack for a closed month (`kind` month, `when` YYYY-MM), written under
    exports/reports/<when>/ and emailed when [reports] smtp_to is configured. Raises
    NoBillingPeriodError for a day or month before the first billing period (nothing to report)
    and ReportDeliveryError when the email fails (the files are written first)."""
    from exports.reports import run_report

    # read-write: the task may share its process with the stages that wrote DuckDB just before;
    # once: a retried or rerun task emails the same report only once (ledger.report_log)
    out = run_report(cfg, kind, when, send=True, read_only=False, once=True)
    progress(f"finance report {kind} {when}: {len(out.get('files', []))} file(s); "
             f"email: {'sent' if out['email'].get('sent') else out['email'].get('reason')}")
    return out


def alert_failure(cfg: Config, title: str, text: str) -> dict[str, Any]:
    """Send a plain failure message (a task that failed) on every configured alert channel,
    with every configured secret masked. Returns, per channel, what was sent and what failed."""
    from reconcile.alerts import notify_failure

    reports = notify_failure(cfg, title, text, secrets=config_secrets(cfg))
    return {name: {"destination": r.destination, "sent": r.sent, "failed": r.failed}
            for name, r in reports.items()}


def config_secrets(cfg: Config) -> list[str]:
    """Every secret the configuration holds (API key, webhook URL, passwords): what a log or a
    message must never show."""
    out = [cfg.stripe_api_key, cfg.secret("alerts", "slack_webhook_url"),
           cfg.secret("alerts", "smtp_password"), *(t.password for t in cfg.warehouse_logins())]
    for source in ("metering", "billing"):
        with contextlib.suppress(Exception):  # a file source or an unusual URL holds no password
            out.append(cfg.source_target(source).password)
    return sorted({s for s in out if s})
