"""`meterline demo` end to end, on DuckDB and on PostgreSQL, and reruns that change nothing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DEMO_ACCOUNTS, ROOT, run_cli
from invariants import BUILD_WORK_TABLES, check_all

from meterline.config import load_config
from meterline.warehouse import connect

SCHEMAS = ("raw", "ledger", "staging", "intermediate", "marts", "seeds")


def snapshot(directory: Path) -> dict[str, str]:
    """A content digest of every warehouse table and view, independent of row order, through
    meterline's connection (the demo runs on DuckDB and on PostgreSQL; invariants.warehouse_digest
    reads a DuckDB file only)."""
    cfg = load_config(directory / "meterline.toml")
    out = {}
    with connect(cfg.warehouse) as conn:
        for schema, table in conn.tables(SCHEMAS):
            if f"{schema}.{table}" in BUILD_WORK_TABLES:
                continue
            rows = conn.fetchall(f'SELECT * FROM "{schema}"."{table}"')
            digest = hashlib.sha256("\n".join(sorted(repr(r) for r in rows)).encode()).hexdigest()
            out[f"{schema}.{table}"] = f"{len(rows)}:{digest}"
    return out


def file_digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


GOLDEN_SAMPLE = Path(__file__).parent / "exports" / "golden_sample_2026-10"


def check_golden_exports(export_dir: Path) -> None:
    """The sample world's October exports (4 accounts, seed 7: one each in USD, KWD, EUR and JPY),
    held as golden files (checked by hand: invoice totals against the billing system's, which
    check_accounting_exports also asserts; JPY without and KWD with three decimals; unbilled
    receivables cleared by the month's invoices). Every CSV and the manifest (which pins the XLSX
    bytes by hash) must be byte-identical. Regenerate with METERLINE_REGEN_GOLDEN=1. Prepaid
    credits and their waterfall are golden in tests/exports/golden/ (hand-made inputs)."""
    import os
    import shutil

    names = sorted(p.name for p in export_dir.iterdir() if p.suffix in (".csv", ".json"))
    if os.environ.get("METERLINE_REGEN_GOLDEN"):
        shutil.rmtree(GOLDEN_SAMPLE, ignore_errors=True)
        GOLDEN_SAMPLE.mkdir(parents=True)
        for name in names:
            shutil.copyfile(export_dir / name, GOLDEN_SAMPLE / name)
    assert names == sorted(p.name for p in GOLDEN_SAMPLE.iterdir())
    for name in names:
        assert (export_dir / name).read_bytes() == (GOLDEN_SAMPLE / name).read_bytes(), name


def check_demo(directory: Path, accounts: int, env: dict[str, str] | None = None,
               golden: bool = False, seed: int = 7, built: Path | None = None) -> list[str]:
    """Run and check the demo (or check a copy of one `built` by the same command); returns what
    every command printed (stdout and stderr)."""
    printed: list[str] = []
    if built is None:
        res = run_cli("demo", "--dir", str(directory), "--accounts", str(accounts), "--seed", str(seed),
                      "--json", env=env)
        printed.append(res.stdout + res.stderr)
        assert res.returncode == 0, res.stderr[-3000:]
        s = json.loads(res.stdout)
    else:
        shutil.copytree(built, directory, symlinks=True)
        s = json.loads((directory / ".meterline" / "demo-summary.json").read_text())
    assert s["accounts"] == accounts and s["days"] == 34
    assert (s["first_day"], s["last_day"]) == ("2026-10-01", "2026-11-03")
    assert s["closed_periods"] == ["2026-10"]
    manifest = json.loads((directory / "manifest.json").read_text())
    assert s["discrepancies_planted"] == len(manifest["discrepancies"]) >= 8
    assert s["discrepancies_found"] == s["discrepancies_planted"], s["discrepancies_missed"]
    assert s["false_positives"] == 0, s["false_positive_findings"]
    assert s["check_errors"] == []
    assert s["drift_flagged"] >= 1
    # every account has an October invoice, and the totals match the billing system's own
    expected = json.loads((directory / "sources" / "expected_invoices.json").read_text())
    oct_expected = [e for e in expected if e["period"] == "2026-10"]
    assert s["invoices"] == len(oct_expected) == accounts
    totals: dict[str, int] = {}
    for e in oct_expected:
        totals[e["currency"].upper()] = totals.get(e["currency"].upper(), 0) + int(e["total_minor"])
    assert s["invoice_totals_minor"] == totals
    # ... and invoice by invoice, in the exported register
    import csv

    register = list(csv.DictReader((directory / "exports" / "2026-10" / "invoice_register.csv").open()))
    assert {r["account_id"]: int(r["total_minor"]) for r in register} == {
        e["account_id"]: int(e["total_minor"]) for e in oct_expected}
    # the Stripe history before the first night came in through the onboarding resync
    cfg = load_config(directory / "meterline.toml", env=env)
    with connect(cfg.warehouse) as conn:
        customers = conn.fetchall("SELECT DISTINCT account_id FROM raw.stripe_customers")
    assert len(customers) == accounts and s["stripe_history_rows"] > accounts
    # exports: the manifest's hashes and row counts are those of the files
    export_dir = directory / "exports" / "2026-10"
    m = json.loads((export_dir / "manifest.json").read_text())
    for f in m["files"]:
        data = (export_dir / f["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"]
        if f["name"].endswith(".csv"):
            assert data.count(b"\n") - 1 == f["rows"]
    names = {f["name"] for f in m["files"]}
    stems = {"invoice_register", "invoice_lines", "journal_entries", "qbo_journal_entries",
             "netsuite_journal_entries", "deferred_revenue_waterfall", "revenue_by_product",
             "revenue_by_account", "balance_rollforward"}
    assert {f"{stem}.{ext}" for stem in stems for ext in ("csv", "xlsx")} <= names
    assert any(n.startswith("xero_manual_journals_") for n in names)
    assert names == {p.name for p in export_dir.iterdir()} - {"manifest.json"}
    check_accounting_exports(export_dir, oct_expected)
    if golden:
        check_golden_exports(export_dir)

    # a rerun of the last night leaves every warehouse table identical
    before = snapshot(directory)
    exports_before = file_digests(export_dir)
    res = run_cli("run", "--date", "2026-11-03", "--json", cwd=directory, env=env)
    printed.append(res.stdout + res.stderr)
    assert res.returncode == 1, res.stderr[-3000:]  # planted drift is still there
    run = json.loads(res.stdout)
    assert run["batches"] == {"skipped_identical": 3}
    assert run["reconciliation"]["drift_flagged"] == s["drift_flagged"]
    assert snapshot(directory) == before

    # closing a closed period again writes nothing
    res = run_cli("close", "--period", "2026-10", "--json", cwd=directory, env=env)
    printed.append(res.stdout + res.stderr)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout)["action"] == "already_closed"
    assert file_digests(export_dir) == exports_before
    assert snapshot(directory) == before

    # issue 10's invariants on a world with planted faults (duplicates, a negative quantity, an
    # unknown account, late data): every metered unit accounted for, invoices = their lines,
    # journal balanced
    source = directory / "sources" / "metering.duckdb"  # a DuckDB metering source, when it is one
    with connect(cfg.warehouse) as conn:
        check_all(conn, source if source.exists() else None)

    res = run_cli("status", "--json", cwd=directory, env=env)
    printed.append(res.stdout + res.stderr)
    assert res.returncode == 0, res.stderr
    st = json.loads(res.stdout)
    assert st["closed_periods"] == ["2026-10"]
    assert st["sources"]["metering"]["batches"] == 34
    return printed


def check_accounting_exports(export_dir: Path, oct_expected: list[dict]) -> None:
    """The October journal balances per entry and currency, invoices in it equal the billing
    system's own totals, and unbilled receivables are cleared by the month's invoices."""
    import csv

    journal = list(csv.DictReader((export_dir / "journal_entries.csv").open()))
    assert journal, "no journal lines exported"
    sums: dict[tuple[str, str], int] = {}
    for r in journal:
        key = (r["entry_id"], r["currency"])
        sums[key] = sums.get(key, 0) + int(r["debit_minor"]) - int(r["credit_minor"])
    assert {k: v for k, v in sums.items() if v} == {}
    receivables = {}
    for r in journal:
        if r["entry_type"] == "invoice" and r["gl_key"] == "receivables":
            receivables[r["account_id"]] = int(r["debit_minor"]) - int(r["credit_minor"])
    assert receivables == {e["account_id"]: int(e["total_minor"]) for e in oct_expected if int(e["total_minor"])}
    rollforward = list(csv.DictReader((export_dir / "balance_rollforward.csv").open()))
    unbilled = [r for r in rollforward if r["balance"] == "unbilled_receivables"]
    assert unbilled and all(int(r["closing_minor"]) == 0 for r in unbilled), unbilled


@pytest.mark.slow
def test_demo_duckdb(tmp_path: Path, demo_world: Path) -> None:
    # the session's shared world is `meterline demo --accounts 4 --json` on DuckDB (conftest):
    # checked here on a copy, as a new user's first run, against the golden files
    check_demo(tmp_path / "demo", accounts=DEMO_ACCOUNTS, golden=True, built=demo_world)


STAGES = ("ingest", "dbt", "ledger", "reporting")


@contextlib.contextmanager
def stage_logins(url: str, password: str) -> Iterator[dict[str, str]]:
    """deploy/postgres-roles.sql applied to `url`'s database, with a LOGIN role per stage; yields
    each stage's URL (`password` in it). The roles are dropped after."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    tag = secrets.token_hex(4)
    roles = {s: f"meterline_t_{s}_{tag}" for s in STAGES}
    logins = {s: f"meterline_t_{s}_login_{tag}" for s in STAGES}
    info = conninfo_to_dict(url)
    with psycopg.connect(url, autocommit=True) as admin:
        for login in logins.values():
            admin.execute(f'CREATE ROLE "{login}" LOGIN')
    try:
        args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(ROOT / "deploy" / "postgres-roles.sql")]
        for s in STAGES:
            args += ["-v", f"{s}_role={roles[s]}", "-v", f"{s}_login={logins[s]}"]
        res = subprocess.run([*args, "-d", url], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        host, port, db = info.get("host", "127.0.0.1"), info.get("port", "5432"), info["dbname"]
        yield {s: f"postgresql://{logins[s]}:{password}@{host}:{port}/{db}" for s in STAGES}
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            # what the roles own depends across roles (dbt's views on ingest's tables): the
            # schemas go first; then their privileges and default privileges, one role at a time
            # (PostgreSQL trips over default ACLs between roles dropped together)
            admin.execute("DROP SCHEMA IF EXISTS raw, ledger, staging, intermediate, marts, seeds CASCADE")
            for r in [*logins.values(), *roles.values()]:
                admin.execute(f'DROP OWNED BY "{r}"')
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
            for r in [*logins.values(), *roles.values()]:
                admin.execute(f'DROP ROLE IF EXISTS "{r}"')


@pytest.mark.slow
@pytest.mark.postgres
def test_demo_postgres(tmp_path: Path, pg_url: str, chromium: str) -> None:
    # another seed than the DuckDB demo's: a different world, other planted discrepancies.
    # Canary secrets (issue 10): a database password in the warehouse URL (the server trusts
    # local connections, so any password is accepted), a Stripe key and an SMTP password; none
    # may appear in anything printed, nor in any file of the demo: dbt's target/ and logs, Data
    # Docs, exports, meterline's state.
    canaries = {"db": "Canary-Db-Pw-7f3a91", "stripe": "sk_test_canary_5c2e77d1",
                "smtp": "Canary-Smtp-Pw-0b6d", "stage": "Canary-Stage-Pw-4d19e2"}
    url = pg_url.replace("postgresql://postgres@", f"postgresql://postgres:{canaries['db']}@")
    assert canaries["db"] in url
    env = {"METERLINE_WAREHOUSE": url, "METERLINE_STRIPE_API_KEY": canaries["stripe"],
           "METERLINE_ALERTS_SMTP_PASSWORD": canaries["smtp"]}
    directory = tmp_path / "demo"
    printed = check_demo(directory, accounts=8, seed=11, env=env)

    # then the least-privilege roles (deploy/postgres-roles.sql) and a login per stage: the
    # night again (ingest, the dbt build, reconciliation and alerts), a finance report and the
    # closed month's re-export, each stage as its own role; nothing is refused, nothing is owned
    # by anyone else. (A reopen and close under the roles passed too; two more dbt builds, so
    # they are left out of CI's time.)
    with stage_logins(pg_url, canaries["stage"]) as stage_urls:
        staged = {**env, "METERLINE_CONFIG": str(directory / "meterline.toml"),
                  **{f"METERLINE_WAREHOUSE_{s.upper()}_URL": u for s, u in stage_urls.items()}}
        export_dir = directory / "exports" / "2026-10"
        exports_before = file_digests(export_dir)
        drift = json.loads((directory / ".meterline" / "demo-summary.json").read_text())["drift_flagged"]
        for args, codes in ((("run", "--date", "2026-11-03"), (1,)),  # planted drift: exit 1
                            (("report", "daily", "--date", "2026-11-03", "--no-send"), (0,)),
                            (("close", "--period", "2026-10"), (0,))):
            res = run_cli(*args, "--json", cwd=directory, env=staged)
            printed.append(res.stdout + res.stderr)
            assert res.returncode in codes, (args, res.stderr[-3000:])
            if args[0] == "run":
                assert json.loads(res.stdout)["reconciliation"]["drift_flagged"] == drift
        # the closed month exported again, as the ledger login: byte-identical (the close checks
        # the manifest against the one it locked)
        assert file_digests(export_dir) == exports_before
        import psycopg

        with psycopg.connect(pg_url) as admin:
            owners = dict(admin.execute(
                "SELECT schemaname || '.' || tablename, tableowner FROM pg_tables WHERE schemaname IN "
                "('raw', 'ledger', 'staging', 'intermediate', 'marts', 'seeds')").fetchall())
        expected = {"raw": "ingest", "ledger": "ledger"}
        wrong = {t: o for t, o in owners.items()
                 if not o.startswith(f"meterline_t_{expected.get(t.split('.')[0], 'dbt')}_")}
        assert wrong == {} and len(owners) > 100, wrong

    leaks = [(name, i) for name, c in canaries.items() for i, text in enumerate(printed) if c in text]
    files = sorted(p for p in (tmp_path / "demo").rglob("*") if p.is_file())
    assert len(files) > 50 and any("target" in p.parts for p in files), "dbt's target/ not scanned"
    leaks += [(name, str(p)) for p in files for name, c in canaries.items()
              if c.encode() in p.read_bytes()]
    assert leaks == [], f"canary secrets leaked: {leaks}"


@pytest.mark.slow
def test_clean_world_flags_nothing(three_month_world: tuple[Path, dict]) -> None:
    # one clean seed (1) over three closed months; false positives are also counted on every
    # planted world (seeds 7 and 11)
    directory, s = three_month_world
    assert s["discrepancies_planted"] == 0
    assert s["drift_flagged"] == 0 and s["false_positives"] == 0 and s["quarantined"] == {}
    assert s["check_errors"] == [] and s["invoices"] == 18
    assert all(outcome == "passed" for outcome in s["checks"].values()), s["checks"]
    cfg = load_config(directory / "meterline.toml")
    with connect(cfg.warehouse, read_only=True) as conn:
        check_all(conn, directory / "sources" / "metering.duckdb")
        # every close saw its month whole: nothing learnt later changed a locked month
        catchups = conn.fetchall('SELECT journal_line_id, amount_minor FROM "marts"."fct_journal_lines" '
                                 "WHERE entry_type = 'catchup'")
    assert catchups == [], catchups
