"""The measured steps of the benchmark, each run by `bench.harness` in a process of its own:

    python -m bench.steps STEP ARGS.json RESULT.json

A step times its own work (`work_s`: the stage function call, lazy imports included, interpreter
start-up excluded) and, for steps made of several stages, each stage (`phases`, each with its
own peak RSS: the kernel's high-water mark VmHWM, reset between phases through
/proc/self/clear_refs), and reports the process's peak RSS (the largest VmHWM seen). The
harness adds the wall time. (wait4's ru_maxrss is not used for the peak: a child forked from
the harness starts with the harness's own high-water mark, which exec carries over.)

With `duckdb_settings` in ARGS (the 300M size: `memory_limit`, `temp_directory`), the
warehouses get them through their config (`[warehouse] duckdb_memory_limit`,
`duckdb_temp_directory`: meterline's connections and dbt's apply them), and every other DuckDB
database this process opens — the floor, the ratings, the source readers — is opened with them
by wrapping `duckdb.connect` in this process only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

STEPS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def step(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    STEPS[fn.__name__] = fn
    return fn


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# measuring inside the process


_process_peak_mb = 0.0  # the process's peak RSS across the resets below


def _peak_mb() -> float | None:
    """VmHWM: the peak RSS of this process image (since exec, or since the last reset)."""
    global _process_peak_mb
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = round(int(line.split()[1]) / 1024, 1)
                _process_peak_mb = max(_process_peak_mb, peak)
                return peak
    return None


def _reset_peak() -> None:
    _peak_mb()  # keep the process's peak before resetting
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS (Linux >= 4.0)


class Phases:
    """`with phases("dbt_build"):` times a stage and records its peak RSS."""

    def __init__(self) -> None:
        self.out: dict[str, dict[str, Any]] = {}
        self._depth = 0

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self._depth == 0:
            _reset_peak()
        self._depth += 1
        start = time.perf_counter()
        try:
            yield
        finally:
            self._depth -= 1
            work = time.perf_counter() - start
            prev = self.out.get(name, {"work_s": 0.0, "peak_rss_mb": 0.0, "calls": 0})
            self.out[name] = {"work_s": round(prev["work_s"] + work, 4),
                              "peak_rss_mb": max(prev["peak_rss_mb"] or 0, _peak_mb() or 0),
                              "calls": prev["calls"] + 1}


def _limit_duckdb(settings: dict[str, str]) -> None:
    """The bench's own DuckDB databases (the floor, the SQL and pandas ratings, the source
    readers) open under the budget too. A warehouse (`warehouse.duckdb`) does not go through
    this: meterline sets the budget on it itself, from the config's [warehouse]
    duckdb_memory_limit (and dbt's on-run-start hook on dbt's connection)."""
    import duckdb

    real = duckdb.connect

    def connect(database: Any = ":memory:", read_only: bool = False, config: Any = None,
                **kwargs: Any) -> Any:
        if str(database).endswith("warehouse.duckdb"):
            return real(database, read_only=read_only, **({"config": config} if config else {}),
                        **kwargs)
        return real(database, read_only=read_only, config={**(config or {}), **settings},
                    **kwargs)

    duckdb.connect = connect


def _dbt_timing(cfg: Any) -> dict[str, Any] | None:
    """Where the last dbt invocation's time went, from meterline's run summary
    (meterline/dbt.py: dbt's own run_results.json is not written): elapsed time,
    node count and summed execution time per resource type (model, test, unit_test, seed),
    and the slowest nodes."""
    from meterline.dbt import RUN_SUMMARY

    path = cfg.state_dir / "dbt" / "target" / RUN_SUMMARY
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    by_type: dict[str, dict[str, Any]] = {}
    for r in data.get("results", []):
        e = by_type.setdefault(r["unique_id"].split(".")[0], {"nodes": 0, "execution_s": 0.0})
        e["nodes"] += 1
        e["execution_s"] += float(r.get("execution_time") or 0)
    for e in by_type.values():
        e["execution_s"] = round(e["execution_s"], 2)
    slowest = sorted(data.get("results", []), key=lambda r: -float(r.get("execution_time") or 0))
    return {"elapsed_s": round(float(data.get("elapsed_time") or 0), 2), "by_type": by_type,
            "slowest": [[r["unique_id"], round(float(r["execution_time"]), 2)]
                        for r in slowest[:5]]}


def _config(args: dict[str, Any]) -> Any:
    from meterline.config import load_config

    return load_config(Path(args["config"]), env={})


def _days(args: dict[str, Any]) -> list[dt.date]:
    return [dt.date.fromisoformat(d) for d in args["days"]]


# ---------------------------------------------------------------------------------------------
# the floor: bare DuckDB over the usage files


@step
def floor_sum(args: dict[str, Any]) -> dict[str, Any]:
    """F0: `sum(quantity)` over every usage row."""
    import duckdb

    phases = Phases()
    con = duckdb.connect()
    with phases("work"):
        total = con.execute(f"SELECT sum(quantity), count(*) FROM read_parquet('{args['glob']}')"
                            ).fetchone()
    return {"phases": phases.out, "sum": int(total[0]), "rows": int(total[1])}


@step
def floor_group(args: dict[str, Any]) -> dict[str, Any]:
    """F1: `GROUP BY account, category, period` over every usage row, fetched."""
    import duckdb

    phases = Phases()
    con = duckdb.connect()
    with phases("work"):
        groups = con.sql(
            f"SELECT account_id, category, date_trunc('month', hour_start) AS period, "
            f"sum(quantity) AS quantity FROM read_parquet('{args['glob']}') "
            "GROUP BY account_id, category, period").to_arrow_table()
    return {"phases": phases.out, "groups": groups.num_rows}


# ---------------------------------------------------------------------------------------------
# meterline's stages


class _FixtureReader:
    """`ingest.stripe.StripeReader`'s listing, answered from the fixture's objects in memory
    (no HTTP): the Stripe history is set-up, loaded through the real resync extraction."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]]):
        self.objects = objects

    def list_sharded(self, names: Any, gte: int, lt: int) -> dict[str, list[dict[str, Any]]]:
        return {n: [o for o in self.objects.get(n, []) if gte <= int(o["created"]) < lt]
                for n in names}

    def lines_of(self, invoices: Any) -> list[dict[str, Any]]:
        return []


@step
def stripe_history(args: dict[str, Any]) -> dict[str, Any]:
    """Set-up: every Stripe object created before the first night, as one `stripe_resync`
    batch (what `meterline resync stripe --until <first day>` loads)."""
    from bench.world import load_stripe_objects
    from ingest.load import ensure_raw, load_batch
    from ingest.stripe import configured_resources, extract_stripe_resync
    from meterline.warehouse import connect

    cfg = _config(args)
    phases = Phases()
    with phases("work"):
        until = dt.datetime.fromisoformat(args["until"])
        since = dt.datetime(1970, 1, 1)
        reader = _FixtureReader(load_stripe_objects(Path(args["stripe_dir"])))
        tables = extract_stripe_resync(reader, since, until,  # type: ignore[arg-type]
                                       configured_resources(cfg.values["sources"]))
        with connect(cfg.warehouse) as conn:
            ensure_raw(conn)
            result = load_batch(conn, "stripe_resync", since, until, tables,
                                dt.datetime.fromisoformat(args["until"]))
    return {"phases": phases.out, "rows": result.rows, "action": result.action}


@step
def ingest(args: dict[str, Any]) -> dict[str, Any]:
    """meterline's ingest of the given nights (billing, Stripe, metering per night)."""
    from meterline.runner import ingest_days

    cfg = _config(args)
    phases = Phases()
    with phases("work"):
        batches = ingest_days(cfg, _days(args), progress=_log)
    return {"phases": phases.out, "batches": len(batches),
            "rows": sum(b["rows"] for b in batches)}


@step
def dbt_parse(args: dict[str, Any]) -> dict[str, Any]:
    """Set-up: `dbt parse` into the warehouse's state folder. A deployed nightly finds the
    previous night's partial-parse cache there (target/partial_parse.msgpack); the measured dbt
    steps then start from it too, and this step's time is the cold parse."""
    from meterline import dbt

    cfg = _config(args)
    phases = Phases()
    with phases("work"):
        res = dbt.run_dbt(cfg, "parse")
    if not res.success:
        raise RuntimeError(f"dbt parse failed: {res.failures[:3]}")
    return {"phases": phases.out}


@step
def rating_models(args: dict[str, Any]) -> dict[str, Any]:
    """Every model (and seed) the rating needs, from raw, without their tests:
    `dbt build --select +fct_billable_usage --resource-type model --resource-type seed`."""
    from meterline import dbt

    cfg = _config(args)
    phases = Phases()
    with phases("work"):
        res = dbt.run_dbt(cfg, "build", extra=["--select", "+fct_billable_usage",
                                               "--resource-type", "model",
                                               "--resource-type", "seed"])
    if not res.success:
        raise RuntimeError(f"dbt build of the rating models failed: {res.failures[:3]}")
    return {"phases": phases.out, "dbt_nodes": res.nodes, "dbt_timing": _dbt_timing(cfg)}


@step
def dbt_build(args: dict[str, Any]) -> dict[str, Any]:
    """The nightly's dbt build (every model and test), then the draft invoice versions. With
    `full_refresh`, the incremental metering model is rebuilt from raw too (`--full-refresh`):
    the build from raw that the floor is compared with, not a night's increment."""
    from meterline import dbt
    from meterline.ledger import record_invoice_versions
    from meterline.warehouse import connect

    cfg = _config(args)
    phases = Phases()
    with phases("work"):
        res = dbt.build(cfg, ["--full-refresh"] if args.get("full_refresh") else None)
        with connect(cfg.warehouse) as conn:
            record_invoice_versions(conn)
    return {"phases": phases.out, "dbt_nodes": res.nodes, "dbt_timing": _dbt_timing(cfg)}


@step
def reconcile(args: dict[str, Any]) -> dict[str, Any]:
    """The nightly's reconciliation stage: GX checkpoint, history, Data Docs, alerts."""
    from meterline.runner import reconcile_now

    cfg = _config(args)
    phases = Phases()
    with phases("work"):
        summary = reconcile_now(cfg)
    return {"phases": phases.out, "checks": summary["checks"],
            "drift_flagged": summary["drift_flagged"], "check_errors": summary["check_errors"]}


@step
def checks_gx(args: dict[str, Any]) -> dict[str, Any]:
    """The GX suites alone: read each suite's frame, validate it (ephemeral GX context, no
    Data Docs, nothing written) — what the hand-written SQL checks are compared with."""
    from meterline.ledger import loaded_through
    from meterline.warehouse import connect

    cfg = _config(args)
    phases = Phases()
    with phases("work"):
        with phases("import_gx"):
            import great_expectations  # noqa: F401 - its import is part of what GX costs
        from reconcile.checks import build_suites, read_frames, run_suites

        with connect(cfg.warehouse, read_only=True) as conn:
            as_of = loaded_through(conn, ["metering"])
            suites = build_suites(cfg.tolerance, cfg.get("reconcile", "freshness_max_hours"))
            frames = read_frames(conn, suites)
        outcomes, _ = run_suites(frames, suites, as_of, gx_dir=None)
    return {"phases": phases.out, "outcomes": {o.check_name: o.outcome for o in outcomes}}


@step
def checks_sql(args: dict[str, Any]) -> dict[str, Any]:
    """The same checks as hand-written SQL (bench/sql_checks.py)."""
    from bench import sql_checks
    from meterline.warehouse import connect

    cfg = _config(args)
    phases = Phases()
    with phases("work"), connect(cfg.warehouse, read_only=True) as conn:
        categories = [r[0] for r in conn.fetchall(
            'SELECT DISTINCT category FROM "marts"."rec_usage_daily" ORDER BY 1')]
        outcomes = sql_checks.run(conn, cfg.tolerance, categories,
                                  cfg.get("reconcile", "freshness_max_hours"))
    return {"phases": phases.out, "outcomes": outcomes}


@step
def nightly(args: dict[str, Any]) -> dict[str, Any]:
    """`meterline run --start D1 --end D2` (runner.nightly): ingest every night, one dbt build,
    reconcile; each stage also timed on its own (phases)."""
    from meterline import dbt, runner

    cfg = _config(args)
    phases = Phases()

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*a: Any, **kw: Any) -> Any:
            with phases(name):
                return fn(*a, **kw)
        return wrapper

    runner.ingest_days = timed("ingest", runner.ingest_days)
    runner.reconcile_now = timed("reconcile", runner.reconcile_now)
    dbt.build = timed("dbt_build", dbt.build)
    with phases("work"):
        summary = runner.nightly(cfg, _days(args), progress=_log)
    rec = summary["reconciliation"]
    return {"phases": phases.out, "dbt_nodes": summary["dbt_nodes"],
            "dbt_timing": _dbt_timing(cfg), "batches": summary["batches"], "checks": rec["checks"],
            "drift_flagged": rec["drift_flagged"], "check_errors": rec["check_errors"]}


@step
def exports(args: dict[str, Any]) -> dict[str, Any]:
    """Period close's own work (exports.close.close_period): issue the period's invoices,
    freeze its journal and revenue, write every export file, lock it. The dbt builds that
    `meterline close` runs around it are dbt's cost, measured above."""
    from exports.close import check_closable, close_period
    from meterline.warehouse import connect

    cfg = _config(args)
    phases = Phases()
    with phases("work"), connect(cfg.warehouse) as conn:
        check_closable(conn, args["period"])
        result = close_period(conn, args["period"], cfg.exports_dir)
    files = [p for p in Path(cfg.exports_dir).rglob("*") if p.is_file()]
    return {"phases": phases.out, "invoices": result.get("invoices"), "files": len(files),
            "bytes": sum(p.stat().st_size for p in files)}


@step
def snapshot(args: dict[str, Any]) -> dict[str, Any]:
    """Not measured: a digest of every mart (row count and an order-independent hash of its
    columns, batch stamps and `exclude` columns left out; DuckDB only), the rated usage (`fct_billable_usage`, as
    Parquet) and the invoice usage lines per currency, for the identity checks."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from meterline.warehouse import connect

    cfg = _config(args)
    digests: dict[str, list[Any]] = {}
    memory_limit = None
    with connect(cfg.warehouse, read_only=True) as conn:
        if conn.kind == "duckdb":
            # the limit meterline's connection runs under ([warehouse] duckdb_memory_limit)
            memory_limit = conn.fetchone("SELECT current_setting('memory_limit')")[0]
            tables = [r[0] for r in conn.fetchall(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' "
                "ORDER BY 1")]
            for table in tables:
                cols = [r[0] for r in conn.fetchall(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = 'marts' AND table_name = ? ORDER BY ordinal_position",
                    [table])]
                excluded = set(args.get("exclude", {}).get(table, []))
                kept = ", ".join(f'"{c}"' for c in cols
                                 if not c.startswith("_") and c not in excluded)
                row = conn.fetchone(
                    f'SELECT count(*), coalesce(sum(hash({kept})), 0) FROM "marts"."{table}"')
                digests[table] = [int(row[0]), str(row[1])]
        rows = conn.fetch_dicts(
            "SELECT account_id, category, period, currency, metered_quantity, amount_minor "
            "FROM marts.fct_billable_usage ORDER BY account_id, category, period")
        lines = conn.fetch_dicts(
            "SELECT currency, sum(amount_minor) AS amount_minor, count(*) AS lines "
            "FROM marts.fct_invoice_lines WHERE line_type = 'usage' GROUP BY currency ORDER BY 1")
    schema = pa.schema([("account_id", pa.string()), ("category", pa.string()),
                        ("period", pa.string()), ("currency", pa.string()),
                        ("metered_quantity", pa.int64()), ("amount_minor", pa.int64())])
    pq.write_table(pa.Table.from_pylist(
        [{**r, "metered_quantity": int(r["metered_quantity"]),
          "amount_minor": int(r["amount_minor"])} for r in rows], schema), args["billable_out"])
    return {"digests": digests, "duckdb_memory_limit": memory_limit,
            "usage_lines": {r["currency"]: {"amount_minor": int(r["amount_minor"]),
                                            "lines": int(r["lines"])} for r in lines}}


# ---------------------------------------------------------------------------------------------
# the same rating elsewhere


@step
def pandas_rating(args: dict[str, Any]) -> dict[str, Any]:
    """bench/pandas_rating.py over the world's files."""
    from bench.pandas_rating import rate

    phases = Phases()
    with phases("work"):
        out = rate(args["glob"], Path(args["billing"]), dt.datetime.fromisoformat(args["as_of"]))
    out.assign(amount_decimal=out["amount_decimal"].astype(str)).to_parquet(args["out"])
    return {"phases": phases.out, "rows": len(out), "amount_minor": int(out["amount_minor"].sum())}


SQL_RATING = """
WITH usage AS (
    SELECT * FROM read_parquet('{glob}') WHERE updated_at < TIMESTAMP '{as_of}'
), latest AS (
    SELECT * FROM usage
    QUALIFY row_number() OVER (PARTITION BY hour_start, account_id, project_id, category, outcome
                               ORDER BY updated_at DESC) = 1
), totals AS (
    SELECT account_id, category, date_trunc('month', hour_start) AS period_start,
           sum(quantity) AS quantity
    FROM latest WHERE outcome = 'accepted' GROUP BY ALL
), tiers AS (
    SELECT t.account_id, t.category, t.period_start, a.currency, t.quantity,
           greatest(0, least(greatest(t.quantity - p.included_quantity, 0),
                             coalesce(p.tier_end, greatest(t.quantity - p.included_quantity, 0)))
                       - p.tier_start) * p.unit_price_decimal AS tier_amount
    FROM totals t
    JOIN billing.subscriptions s ON s.account_id = t.account_id AND s.started_at <= t.period_start
         AND (s.ended_at IS NULL OR t.period_start < s.ended_at)
    JOIN billing.accounts a ON a.account_id = t.account_id
    JOIN billing.price_books p ON p.plan_id = s.plan_id AND p.category = t.category
         AND p.effective_from <= t.period_start
         AND (p.effective_to IS NULL OR t.period_start < p.effective_to)
), rated AS (
    SELECT account_id, category, strftime(period_start, '%Y-%m') AS period, currency,
           any_value(quantity) AS quantity, CAST(sum(tier_amount) AS DECIMAL(38, 12)) AS amount
    FROM tiers GROUP BY account_id, category, period_start, currency
)
SELECT rated.*, CAST(CASE
        WHEN x - floor(x) > 0.5 THEN floor(x) + 1 WHEN x - floor(x) < 0.5 THEN floor(x)
        WHEN floor(x) % 2 = 0 THEN floor(x) ELSE floor(x) + 1 END AS BIGINT) AS amount_minor
FROM (SELECT rated.*, rated.amount * CAST(10 ** c.exponent AS BIGINT) AS x
      FROM rated JOIN currencies c USING (currency)) AS rated
ORDER BY account_id, category, period
"""


@step
def sql_rating(args: dict[str, Any]) -> dict[str, Any]:
    """The same straightforward rating as one DuckDB SQL query (no dbt, no ingest)."""
    import duckdb

    from bench.pandas_rating import SEED_CURRENCIES

    phases = Phases()
    con = duckdb.connect()
    with phases("work"):
        con.execute(f"ATTACH '{args['billing']}' AS billing (READ_ONLY)")
        con.execute("CREATE TEMP TABLE currencies AS SELECT currency, minor_unit_exponent "
                    f"AS exponent FROM read_csv('{SEED_CURRENCIES}', header = true)")
        out = con.sql(SQL_RATING.format(glob=args["glob"], as_of=args["as_of"])).to_arrow_table()
    import pyarrow.parquet as pq

    pq.write_table(out.drop_columns(["x", "amount"]), args["out"])
    return {"phases": phases.out, "rows": out.num_rows,
            "amount_minor": int(sum(out.column("amount_minor").to_pylist()))}


# ---------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    name, args_path, result_path = argv
    args = json.loads(Path(args_path).read_text(encoding="utf-8"))
    for key in [k for k in os.environ if k.startswith("METERLINE_")]:
        del os.environ[key]  # the bench's own config file only
    if args.get("duckdb_settings"):
        _limit_duckdb(args["duckdb_settings"])
    try:
        result = STEPS[name](args)
    except BaseException:
        # a failed step still reports how high it got (the harness's own figure, wait4's, is
        # only an upper bound: a forked child starts from the harness's high-water mark)
        _peak_mb()
        Path(result_path).with_suffix(".failed.json").write_text(
            json.dumps({"process_peak_rss_mb": _process_peak_mb or None}), encoding="utf-8")
        raise
    result["work_s"] = result.get("phases", {}).get("work", {}).get("work_s")
    _peak_mb()
    result["process_peak_rss_mb"] = _process_peak_mb or None
    Path(result_path).write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
