"""The `meterline` command line.

Exit codes: 0 the work was done and nothing drifted; 1 reconciliation found drift beyond
tolerance (the summary says what); 2 a user error (config, date, period, unreachable
warehouse or source: one line on stderr); 3 a stage failed (dbt, export); 4 a reconciliation
check raised an error (an error is not a drift and not a pass); 5 an alert channel failed (the
summary says which and why; drift and check errors are still in the summary).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click

from meterline.errors import MeterlineError

EXIT_DRIFT = 1
EXIT_CHECK_ERROR = 4
EXIT_ALERT_FAILED = 5


def _emit(ctx: click.Context, summary: dict[str, Any], human: list[str]) -> None:
    if ctx.obj.get("json"):
        click.echo(json.dumps(summary, sort_keys=True, default=str))
    else:
        for line in human:
            click.echo(line)


def _date(value: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise MeterlineError(f"{what} must be a date like 2026-10-31, got {value!r}") from None


def _config(ctx: click.Context):
    from meterline.config import load_config

    return load_config(ctx.obj.get("config"))


def json_option(f):
    def callback(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            ctx.ensure_object(dict)
            ctx.find_root().obj["json"] = True
        return value

    return click.option("--json", "json_", is_flag=True, expose_value=False, callback=callback,
                        help="Print one machine-readable JSON summary on stdout.")(f)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="Path to meterline.toml (default: $METERLINE_CONFIG or ./meterline.toml).")
@click.option("--json", "json_", is_flag=True, help="Print one machine-readable JSON summary on stdout.")
@click.pass_context
def cli(ctx: click.Context, config: str | None, json_: bool) -> None:
    """meterline: nightly billing-data pipeline (metering, billing, Stripe)."""
    ctx.obj = {"config": config, "json": json_}


def _rec_exit(rec: dict[str, Any]) -> int:
    if rec.get("check_errors"):
        return EXIT_CHECK_ERROR
    if (rec.get("alerts") or {}).get("failed"):
        return EXIT_ALERT_FAILED
    return EXIT_DRIFT if rec.get("drift_flagged") else 0


def _rec_lines(rec: dict[str, Any]) -> list[str]:
    lines = [f"reconciliation as of {rec['as_of']}: "
             + ", ".join(f"{k} {v}" for k, v in rec["checks"].items())]
    if rec["quarantined"]:
        lines.append("quarantined rows: " + ", ".join(f"{k} {v}" for k, v in rec["quarantined"].items()))
    for err in rec["check_errors"]:
        lines.append(f"CHECK ERROR {err}")
    drift = [f for f in rec["findings"] if f["check_name"] != "quarantine"]
    if drift:
        lines.append(f"DRIFT: {len(drift)} finding(s); first ones:")
        for f in drift[:10]:
            key = " ".join(f"{k}={f[k]}" for k in ("account_id", "category", "period", "day", "object_id")
                           if f.get(k) is not None)
            lines.append(f"  {f['check_name']} {f['status']} {key} {f.get('detail') or ''}".rstrip())
        checks = sorted({f["check_name"] for f in drift})
        lines.append("  detail: " + "; ".join(f"meterline reconcile --details --check {c}" for c in checks))
    alerts = rec.get("alerts") or {}
    if alerts:
        lines.append(f"alerts: {alerts['new']} new, {alerts['changed']} changed, {alerts['digest']} in the digest, "
                     f"{alerts['resolved']} resolved, {alerts['errors']} check error(s)")
        for name, ch in alerts.get("channels", {}).items():
            for failure in ch.get("failed", []):
                lines.append(f"ALERT FAILED on {name} ({ch['destination']}): {failure}")
    if rec.get("data_docs"):
        lines.append(f"GX Data Docs: {rec['data_docs']}")
    return lines


@cli.command()
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Folder to write the world to.")
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--accounts", default=40, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--days", default=34, show_default=True, type=click.IntRange(1, 3660))
@click.option("--start", "start", default="2026-10-01", show_default=True, help="First day of the world.")
@click.option("--clean", is_flag=True, help="Plant no discrepancies.")
@json_option
@click.pass_context
def sample(ctx: click.Context, out: str, seed: int, accounts: int, days: int, start: str,
           clean: bool) -> None:
    """Write a deterministic sample world (sources + ground-truth manifest) to --out."""
    from meterline.sample.generate import generate

    manifest = generate(Path(out), seed=seed, accounts=accounts, days=days,
                        start=_date(start, "--start"), plant=not clean)
    summary = {"out": str(Path(out).resolve()), "accounts": manifest["accounts"], "days": manifest["days"],
               "first_day": manifest["first_day"], "last_day": manifest["last_day"],
               "discrepancies_planted": len(manifest["discrepancies"])}
    _emit(ctx, summary, [f"sample world written to {summary['out']} "
                         f"({accounts} accounts, {manifest['first_day']} to {manifest['last_day']}, "
                         f"{summary['discrepancies_planted']} planted discrepancies)"])


@cli.command()
@click.option("--date", "date_", default=None, help="Data interval (one day) to run.")
@click.option("--start", default=None, help="First day of a range (inclusive).")
@click.option("--end", default=None, help="Last day of a range (inclusive).")
@json_option
@click.pass_context
def run(ctx: click.Context, date_: str | None, start: str | None, end: str | None) -> None:
    """Run the nightly pipeline for one day (--date) or a range (--start/--end)."""
    from meterline import runner

    if date_ and (start or end):
        raise MeterlineError("use either --date or --start/--end, not both")
    if date_:
        days = [_date(date_, "--date")]
    elif start and end:
        days = runner.days_between(_date(start, "--start"), _date(end, "--end"))
    else:
        raise MeterlineError("say which data interval: --date D or --start D1 --end D2")
    cfg = _config(ctx)
    summary = runner.nightly(cfg, days)
    rec = summary["reconciliation"]
    _emit(ctx, summary, [f"nightly {days[0]} .. {days[-1]}: batches {summary['batches']}",
                         *_rec_lines(rec)])
    sys.exit(_rec_exit(rec))


@cli.command()
@click.option("--period", required=True, help="Billing period to close, YYYY-MM.")
@click.option("--reopen", is_flag=True,
              help="Reopen a locked period instead (its invoices stay issued); needs --reason.")
@click.option("--reason", default=None, help="Why the period is reopened (kept in the audit trail).")
@json_option
@click.pass_context
def close(ctx: click.Context, period: str, reopen: bool, reason: str | None) -> None:
    """Close a period: issue its invoices, recognize revenue, write its exports, lock it.

    Closing a locked period again re-exports it, byte-identical. --reopen --reason unlocks it
    (audited); close it again afterwards."""
    from meterline import runner

    if reopen:
        result = runner.reopen(_config(ctx), period, reason or "")
        _emit(ctx, result, [f"reopened {period}: {result['reason']}"])
        return
    if reason:
        raise MeterlineError("--reason is only for --reopen")
    result = runner.close(_config(ctx), period)
    if result["action"] == "already_closed":
        human = [f"{period} is already closed; exports re-written byte-identical "
                 f"(manifest sha256 {result['manifest_sha256'][:12]})"]
    else:
        human = [f"{result['action']} {period}: {result['invoices']} invoices, totals "
                 f"{result['invoice_totals_minor']}, {result['journal_lines']} journal lines",
                 *[f"  wrote {p}" for p in result["exports"]]]
    _emit(ctx, result, human)


@cli.command("void")
@click.option("--invoice", "invoice_id", required=True,
              help="Issued invoice to void (invoice_id in marts.fct_invoices).")
@click.option("--reason", required=True, help="Why it is voided (required; kept with the invoice).")
@json_option
@click.pass_context
def void(ctx: click.Context, invoice_id: str, reason: str) -> None:
    """Void an issued invoice. The next build bills its period again on the next draft invoice.

    Its lines stop counting as billed: the period's charges become `unbilled` adjustment lines
    on the next draft invoice and the credits it drew are returned. Voiding a void invoice
    changes nothing. A draft cannot be voided (it is recomputed every night).
    """
    from meterline import runner

    r = runner.void(_config(ctx), invoice_id, reason)
    what = f"{r['invoice_id']} ({r['account_id']} {r['period']}, total {r['total_minor']} {r['currency']} minor units)"
    if r["action"] == "already_void":
        human = [f"{what} was already void as of {r['voided_at']} ({r['void_reason']}); nothing changed"]
    else:
        human = [f"voided {what} as of {r['voided_at']}: {r['void_reason']}",
                 "  the next build (meterline run / close) bills its period again on the next draft invoice"]
    _emit(ctx, r, human)


@cli.command("push")
@click.option("--period", required=True, help="Closed billing period whose issued invoices to push, YYYY-MM.")
@click.option("--localstripe", is_flag=True,
              help="Development only: adapt to the localstripe stand-in (no finalize; see docs/exports.md).")
@json_option
@click.pass_context
def push(ctx: click.Context, period: str, localstripe: bool) -> None:
    """Push a closed period's issued invoices to Stripe: customer, invoice items, invoice, finalize.

    Replay-safe: every object has a deterministic key (outbox ledger.stripe_outbox, Stripe
    idempotency key, metadata meterline_key); a rerun creates nothing twice and resumes what
    failed. Exit 3 when objects stay unconfirmed (their errors are in the outbox)."""
    from exports.stripe_push import PushFailed, push_from_config
    from meterline.runlock import exclusive

    cfg = _config(ctx)
    with exclusive(cfg.warehouse_for("ledger"), "stripe push"):
        r = push_from_config(cfg, period, localstripe=localstripe)
    human = [f"stripe push {period}: {r.created} created, {r.found_existing} found existing, "
             f"{r.confirmed} confirmed, {r.skipped} skipped, {r.failed} failed",
             *[f"  {inv_id}: {i['state']} {i['stripe_invoice_id'] or ''}".rstrip()
               for inv_id, i in sorted(r.invoices.items())],
             *[f"  warning: {w}" for w in r.warnings]]
    _emit(ctx, r.to_dict(), human)
    if r.failed:
        first = r.errors[0] if r.errors else "see ledger.stripe_outbox"
        raise PushFailed(f"stripe push {period}: {r.failed} object(s) not confirmed, first: {first} "
                         f"(rerun meterline push --period {period}: it is replay-safe)")


@cli.command()
@click.option("--details", is_flag=True, help="Show the stored findings of the last reconciliation; run nothing.")
@click.option("--check", "check", default=None, help="Only this check (with --details).")
@click.option("--no-alerts", is_flag=True, help="Run the checks without alerting.")
@json_option
@click.pass_context
def reconcile(ctx: click.Context, details: bool, check: str | None, no_alerts: bool) -> None:
    """Rebuild the reconciliation marts, run the GX checks and alert (or, with --details, show
    the last findings). Use it after `meterline explain`."""
    from meterline import runner

    cfg = _config(ctx)
    if details:
        d = runner.reconcile_details(cfg, check)
        human = [f"reconciliation as of {d['as_of']}: {len(d['findings'])} finding(s)"
                 + (f" of {check}" if check else "")]
        human += [f"  {c['check_name']}: {c['outcome']} observed={c['observed_value'] or '-'} "
                  f"affected_rows={c['unexpected_rows']}{' ' + c['detail'] if c['detail'] else ''}"
                  for c in d["checks"]]
        for f in d["findings"]:
            key = " ".join(f"{k}={f[k]}" for k in ("account_id", "category", "period", "day", "object_id", "reason")
                           if f.get(k) is not None)
            diff = "" if f.get("difference") is None else f" difference={f['difference']} {f.get('unit') or ''}"
            human.append(f"  {f['check_name']} {f['status']} {key}{diff.rstrip()}  {f.get('detail') or ''}".rstrip())
        _emit(ctx, d, human)
        return
    if check:
        raise MeterlineError("--check is only for --details")
    rec = runner.reconcile_rebuilt(cfg, alert=not no_alerts)
    _emit(ctx, rec, _rec_lines(rec))
    sys.exit(_rec_exit(rec))


@cli.command()
@click.option("--check", "check", default=None, help="The check it explains (usage_daily, invoice_lines, ...).")
@click.option("--account", "account_id", default=None)
@click.option("--category", default=None)
@click.option("--period", default=None, help="YYYY-MM")
@click.option("--day", default=None, help="YYYY-MM-DD")
@click.option("--object", "object_id", default=None, help="A Stripe object id (payments, balance_transactions).")
@click.option("--reason", default=None, help="Why this drift is accepted.")
@click.option("--by", "explained_by", default=None, help="Who accepts it.")
@click.option("--until", default=None, help="Holds until this day (exclusive, data time); default: no end.")
@click.option("--list", "list_", is_flag=True, help="List every explanation.")
@click.option("--revoke", default=None, help="Revoke this explanation id.")
@json_option
@click.pass_context
def explain(ctx: click.Context, check: str | None, account_id: str | None, category: str | None,
            period: str | None, day: str | None, object_id: str | None, reason: str | None,
            explained_by: str | None, until: str | None, list_: bool, revoke: str | None) -> None:
    """Record an accepted explanation of a drift: who, why, until when. Covered rows get the
    status `explained` at the next build (meterline reconcile or the nightly run)."""
    from meterline import runner

    cfg = _config(ctx)
    if list_:
        rows = runner.explanations(cfg)
        _emit(ctx, {"explanations": rows}, [
            f"{r['explanation_id']} {r['check_name']} "
            + " ".join(f"{k}={r[k]}" for k in ("account_id", "category", "period", "day", "object_id") if r.get(k))
            + f" by {r['explained_by']} until {r['expires_at'] or 'no end'}"
            + (f" REVOKED {r['revoked_at']}" if r.get("revoked_at") else "") + f": {r['reason']}"
            for r in rows] or ["no explanations on file"])
        return
    if revoke:
        r = runner.revoke_explanation(cfg, revoke)
        _emit(ctx, r, [f"{r['explanation_id']} revoked as of {r['revoked_at']}"])
        return
    if not check:
        raise MeterlineError("say which check it explains: --check (or --list, --revoke ID)")
    r = runner.explain(cfg, check, {"account_id": account_id, "category": category, "period": period,
                                    "day": day, "object_id": object_id},
                       reason or "", explained_by or "", _date(until, "--until") if until else None)
    _emit(ctx, r, [f"{r['explanation_id']} recorded: {r['check_name']} "
                   + " ".join(f"{k}={r[k]}" for k in ("account_id", "category", "period", "day", "object_id")
                              if r.get(k))
                   + f" by {r['explained_by']} until {r['expires_at'] or 'no end'}: {r['reason']}",
                   "  it applies from the next build: meterline reconcile"])


@cli.command()
@click.argument("kind", type=click.Choice(["daily", "month"]))
@click.option("--date", "when", required=True,
              help="daily: the day (YYYY-MM-DD); month: the billing month (YYYY-MM).")
@click.option("--no-send", is_flag=True, help="Write the report; do not email it.")
@json_option
@click.pass_context
def report(ctx: click.Context, kind: str, when: str, no_send: bool) -> None:
    """Write the finance daily flash or month-end pack (HTML, PDF, CSV and XLSX of every table)
    to exports/reports/<date>/ and email it to [reports] smtp_to."""
    from exports.reports import run_report

    r = run_report(_config(ctx), kind, when, send=not no_send)
    email = r.get("email") or {}
    human = [f"{kind} report {when}: {r.get('dir')}",
             *[f"  wrote {p}" for p in r.get("files", [])][:12],
             f"  email: {'sent to ' + ', '.join(email.get('to', [])) if email.get('sent') else email.get('reason')}"]
    _emit(ctx, r, human)


@cli.command()
@click.option("--size", required=True, type=click.Choice(["smoke", "1m", "30m", "300m"]),
              help="Metering rows to generate (300m is opt-in: hours, and a 4 GiB memory limit).")
@click.option("--out", "out", default="bench/results", show_default=True, type=click.Path(file_okay=False),
              help="Where the JSON and Markdown results go.")
@click.option("--no-postgres", is_flag=True, help="Skip the PostgreSQL path.")
@json_option
@click.pass_context
def bench(ctx: click.Context, size: str, out: str, no_postgres: bool) -> None:
    """Measure meterline against the floor (bare DuckDB sum / GROUP BY) and a pandas rating, on
    generated data; every target's ratio and whether it holds."""
    from bench.harness import markdown, run_bench

    r = run_bench(size, Path(out), json_only=False, postgres=not no_postgres)
    _emit(ctx, r, [markdown(r)])


@cli.group()
def resync() -> None:
    """Re-read a source in full, for when incremental pulls missed something."""


@resync.command("stripe")
@click.option("--since", default=None, help="Only objects created on or after this day (default: all).")
@click.option("--until", default=None,
              help="Only objects created before this day (default: the end of the latest loaded Stripe night).")
@json_option
@click.pass_context
def resync_stripe(ctx: click.Context, since: str | None, until: str | None) -> None:
    """List every Stripe object (all resources) and load it as one batch.

    Updates to objects older than the Events API's 30-day window are only seen this way.
    """
    from meterline import runner

    s = runner.resync_stripe(_config(ctx), since=_date(since, "--since") if since else None,
                             until=_date(until, "--until") if until else None)
    _emit(ctx, s, [f"resync stripe [{s['since'][:10]}, {s['until'][:10]}): {s['rows']} rows "
                   f"({s['action']}), batch {s['batch_id']}",
                   "  " + ", ".join(f"{k} {v}" for k, v in s["row_counts"].items())])


@cli.command()
@json_option
@click.pass_context
def status(ctx: click.Context) -> None:
    """Show what has been ingested, closed and reconciled."""
    from meterline import runner

    s = runner.status(_config(ctx))
    human = [f"warehouse: {s['warehouse']}"]
    for src, info in s["sources"].items():
        human.append(f"  {src}: {info['batches']} batches, {info['first']} .. {info['last']}, {info['rows']} rows")
    human.append(f"closed periods: {', '.join(s['closed_periods']) or 'none'}")
    lr = s["last_reconciliation"]
    human.append(f"last reconciliation: {lr['as_of'] or 'never'} {lr['checks']} drift findings {lr['drift_findings']}")
    _emit(ctx, s, human)


@cli.command()
@click.option("--dir", "directory", default="meterline-demo", show_default=True,
              type=click.Path(file_okay=False), help="Everything the demo makes goes here.")
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--accounts", default=40, show_default=True, type=click.IntRange(4, 5000))
@click.option("--days", default=34, show_default=True, type=click.IntRange(1, 400))
@click.option("--clean", is_flag=True, help="A world with no planted discrepancies.")
@json_option
@click.pass_context
def demo(ctx: click.Context, directory: str, seed: int, accounts: int, days: int, clean: bool) -> None:
    """Build the sample world, run every night and close each full month, then summarise."""
    from meterline import runner

    s = runner.demo(Path(directory), seed=seed, accounts=accounts, days=days, plant=not clean)
    human = [
        f"meterline demo in {s['dir']} ({s['warehouse']})",
        f"  {s['accounts']} accounts, {s['first_day']} .. {s['last_day']}, closed {', '.join(s['closed_periods']) or 'none'}",
        f"  {s['invoices']} invoices issued, totals (minor units) {s['invoice_totals_minor']}",
        f"  reconciliation: {s['drift_flagged']} drift finding(s), quarantined {s['quarantined']}",
        f"  planted discrepancies found: {s['discrepancies_found']}/{s['discrepancies_planted']}, "
        f"false positives: {s['false_positives']}",
        *[f"    {f['check_name']} {f['status']} "
          + " ".join(f"{k}={f[k]}" for k in ("account_id", "category", "period", "day", "object_id")
                     if f.get(k) is not None)
          + (f"  ({f['detail']})" if f.get("detail") else "")
          for f in s["findings"]],
        *[f"  export {p}" for p in s["exports"]],
        f"  next: cd {s['dir']} && {Path(sys.executable).parent / 'meterline'} status",
    ]
    _emit(ctx, s, human)
    ok = (s["discrepancies_found"] == s["discrepancies_planted"] and s["false_positives"] == 0
          and not s["check_errors"])
    sys.exit(0 if ok else EXIT_DRIFT)


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="meterline", standalone_mode=False)
    except MeterlineError as exc:
        click.echo(f"meterline: error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("meterline: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
