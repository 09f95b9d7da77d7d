"""The meterline benchmark: how fast and how big, against the floor and the alternatives.

    python -m bench.harness --size 1m [--size 30m] [--json] [--out DIR] [--no-postgres]

`meterline bench --size ... [--json]` calls `run_bench`. One run of one size generates the
world (bench/world.py) and measures, each step in a process of its own (bench/steps.py: the
step's own work time and peak RSS from inside it, the wall time around it):

- the floor: F0, a bare DuckDB `sum` over the usage files; F1, a bare `GROUP BY` account,
  category, period;
- meterline's stages on warehouse A, every night of the world: ingest, the rating models
  (+fct_billable_usage, models only), dbt build, reconciliation (GX, the production
  stage), the GX suites alone against the same checks in hand-written SQL, the exports of the
  month's close;
- the whole nightly on warehouse B: a full rebuild over the first 30 nights in one
  `meterline run`, then the incremental nightly (night 31 on top of 30), whose marts must equal
  A's (every mart's digest);
- the same rating in pandas (bench/pandas_rating.py) and as one DuckDB SQL query, both
  checked against meterline's `fct_billable_usage` row by row and the invoice usage lines;
- dbt's fixed overhead: dbt build over a one-account, one-night world;
- the PostgreSQL path (smoke, 1M, 30M): the whole nightly over every night into
  a fresh database `meterline_bench_<hex>` (dropped after), its rating checked against DuckDB's.

Writes `<out>/<size>-<UTC timestamp>.json` and `.md` and returns the JSON as a dict: every
measurement, the machine, every target with its measured ratio and whether it holds.
The 300M size runs DuckDB under a memory limit (`memory_limit`, spilling to `temp_directory`)
and skips pandas and PostgreSQL.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.world import DAYS, PERIOD, World, make_world

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
SIZES: dict[str, int] = {"smoke": 100_000, "1m": 1_000_000, "30m": 30_000_000,
                         "300m": 300_000_000}
POSTGRES_SIZES = ("smoke", "1m", "30m")
PANDAS_SIZES = ("smoke", "1m", "30m")
MEMORY_LIMITED_SIZES = ("300m",)
MEMORY_BUDGET_BYTES = 4 * 1024**3  # 300M: the whole process under 4 GiB
DUCKDB_SHARE_OF_BUDGET = 0.75  # DuckDB's memory_limit; the rest is Python, dbt, GX, Arrow
TINY_ROWS = 1  # one account: dbt's fixed overhead
TINY_NIGHTS = 1
# history-dependent by design, left out of the incremental = full rebuild comparison:
# fct_invoices.version counts a draft's recorded revisions (ledger.invoice_versions, one per
# build whose lines changed), so it depends on how many builds saw the draft, not on the data
DIGEST_EXCLUDED = {"fct_invoices": ["version"]}
GIB = 1024**3
Progress = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class StepFailed(Exception):
    def __init__(self, key: str, message: str, oom: bool):
        super().__init__(f"{key}: {message}")
        self.key, self.message, self.oom = key, message, oom


# ---------------------------------------------------------------------------------------------
# running one step in its own process


class Steps:
    """Runs bench.steps in child processes and keeps every measurement."""

    def __init__(self, work: Path, progress: Progress, duckdb_settings: dict[str, str] | None):
        self.dir = work / "steps"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.progress = progress
        self.duckdb_settings = duckdb_settings
        self.measurements: dict[str, dict[str, Any]] = {}
        self.setup: dict[str, dict[str, Any]] = {}

    def run(self, key: str, step: str, args: dict[str, Any], what: str,
            setup: bool = False) -> dict[str, Any]:
        args = {**args, "duckdb_settings": self.duckdb_settings}
        args_path, result_path = self.dir / f"{key}.args.json", self.dir / f"{key}.result.json"
        log_path = self.dir / f"{key}.log"
        args_path.write_text(json.dumps(args, indent=2, default=str), encoding="utf-8")
        result_path.unlink(missing_ok=True)
        result_path.with_suffix(".failed.json").unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        self.progress(f"bench: {key} ({what}) ...")
        start = time.perf_counter()
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.steps", step, str(args_path), str(result_path)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        # ru_maxrss (KiB) starts from the harness's own high-water mark (fork, then exec): an
        # upper bound, used only when the step could not report its own peak (VmHWM)
        upper_mb = round(usage.ru_maxrss / 1024, 1)
        entry: dict[str, Any] = {"what": what, "step": step, "wall_s": round(wall, 3),
                                 "peak_rss_mb": upper_mb, "peak_rss_mb_source": "wait4"}
        if proc.returncode != 0 or not result_path.exists():
            failed = result_path.with_suffix(".failed.json")
            with contextlib.suppress(OSError, ValueError):
                own = json.loads(failed.read_text(encoding="utf-8")).get("process_peak_rss_mb")
                if own:
                    entry.update(peak_rss_mb=own, peak_rss_mb_source="VmHWM")
            tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
            oom = (proc.returncode == -9 or "out of memory" in tail.lower()
                   or "MemoryError" in tail)
            entry.update(ok=False, exit_code=proc.returncode, oom=oom,
                         error=tail.strip().splitlines()[-1] if tail.strip() else "no output",
                         log=str(log_path),  # deleted with the work folder unless --keep:
                         log_tail=tail.strip().splitlines()[-40:])
            (self.setup if setup else self.measurements)[key] = entry
            self.progress(f"bench: {key} FAILED (exit {proc.returncode}): {entry['error']}")
            raise StepFailed(key, entry["error"], oom)
        result = json.loads(result_path.read_text(encoding="utf-8"))
        phases = result.pop("phases", {})
        work = phases.pop("work", {}).get("work_s")
        peak_mb = result.pop("process_peak_rss_mb", None) or upper_mb
        result.pop("work_s", None)
        entry.update(ok=True, work_s=work, peak_rss_mb=peak_mb,
                     peak_rss_mb_source="VmHWM" if peak_mb != upper_mb else "wait4",
                     detail=result)
        if phases:
            entry["phases"] = phases
        (self.setup if setup else self.measurements)[key] = entry
        self.progress(f"bench: {key}: work {_fmt(work)} s, wall {wall:.2f} s, "
                      f"peak {entry['peak_rss_mb']:.0f} MiB")
        return result


def _toml(path: Path, world: World, warehouse_url: str, state: Path,
          duckdb_settings: dict[str, str] | None = None) -> Path:
    """The config of one bench warehouse. Under a memory budget, a DuckDB warehouse gets it as
    the product's own settings ([warehouse] duckdb_memory_limit, duckdb_temp_directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    limits = ""
    if duckdb_settings and warehouse_url.startswith("duckdb:"):
        limits = (f'duckdb_memory_limit = "{duckdb_settings["memory_limit"]}"\n'
                  f'duckdb_temp_directory = "{duckdb_settings["temp_directory"]}"\n')
    path.write_text(
        "# written by bench/harness.py\n"
        f'[warehouse]\nurl = "{warehouse_url}"\n{limits}\n'
        f'[sources]\nmetering_path = "{world.usage_glob}"\nmetering_format = "parquet"\n'
        f'billing_url = "duckdb:///{world.billing_path}"\n'
        f'stripe_fixture = "{world.stripe_empty_dir}"\n\n'
        f'[pipeline]\nstate_dir = "{state}"\nexports_dir = "{state / "exports"}"\n\n'
        f'[reconcile]\ngx_dir = "{state / "gx"}"\n', encoding="utf-8")
    return path


def _disk_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1024**2, 1)


def _nights(world: World, first: int, last: int) -> list[str]:
    return [d.isoformat() for d in world.nights[first:last]]


# ---------------------------------------------------------------------------------------------
# the machine


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _mem_total_gib() -> float | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    return None


def _git() -> dict[str, Any]:
    """The commit measured, and whether the working tree differed from it (uncommitted edits
    to the dbt project change what a dbt build does)."""
    def git(*args: str) -> str:
        with contextlib.suppress(Exception):
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        return ""

    dirty = [line[3:] for line in git("status", "--porcelain").splitlines()]
    return {"commit": git("rev-parse", "HEAD") or None,
            "uncommitted_paths": len(dirty),
            "uncommitted_dbt_paths": sorted(p for p in dirty if p.startswith("dbt_project/"))}


def machine() -> dict[str, Any]:
    versions = {}
    for pkg in ("duckdb", "dbt-core", "dbt-duckdb", "dbt-postgres", "great-expectations",
                "pandas", "pyarrow", "psycopg"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[pkg] = metadata.version(pkg)
    return {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": _mem_total_gib(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
    }


# ---------------------------------------------------------------------------------------------
# comparisons


def _compare_rating(reference: Path, other: Path, amount_col: str = "amount_minor") -> dict[str, Any]:
    """Row by row: same (account, category, period) keys, same amount_minor, same quantity."""
    import pyarrow.parquet as pq

    ref = {(r["account_id"], r["category"], r["period"]): r for r in pq.read_table(reference).to_pylist()}
    oth = {(r["account_id"], r["category"], r["period"]): r for r in pq.read_table(other).to_pylist()}
    missing = sorted(set(ref) - set(oth))
    extra = sorted(set(oth) - set(ref))
    qty = "quantity" if oth and "quantity" in next(iter(oth.values())) else "metered_quantity"
    differ = [k for k in sorted(set(ref) & set(oth))
              if int(ref[k]["amount_minor"]) != int(oth[k][amount_col])
              or int(ref[k]["metered_quantity"]) != int(oth[k][qty])]
    totals: dict[str, list[int]] = {}
    for r in ref.values():
        totals.setdefault(r["currency"], [0, 0])[0] += int(r["amount_minor"])
    for r in oth.values():
        totals.setdefault(r["currency"], [0, 0])[1] += int(r[amount_col])
    return {
        "rows": len(ref), "rows_other": len(oth), "missing": len(missing), "extra": len(extra),
        "amount_differs": len(differ), "first_differences": [list(k) for k in (differ or missing or extra)[:3]],
        "totals_minor_by_currency": {c: {"meterline": t[0], "other": t[1]} for c, t in sorted(totals.items())},
        "equal": not missing and not extra and not differ,
    }


def _compare_digests(a: dict[str, list[Any]], b: dict[str, list[Any]]) -> dict[str, Any]:
    """Every mart of A against B: same rows (count and order-independent hash)."""
    differ = sorted(t for t in set(a) & set(b) if a[t] != b[t])
    only = sorted(set(a) ^ set(b))  # a model added or removed while the bench ran
    return {"tables": len(set(a) | set(b)), "differ": differ, "only_in_one": only,
            "rows": sum(v[0] for v in a.values()), "excluded_columns": DIGEST_EXCLUDED,
            "identical": not differ and not only}


# ---------------------------------------------------------------------------------------------
# targets


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or not den:
        return None
    return round(num / den, 3)


def _work(m: dict[str, dict[str, Any]], key: str) -> float | None:
    e = m.get(key)
    return e.get("work_s") if e and e.get("ok") else None


def _peak(m: dict[str, dict[str, Any]], key: str) -> float | None:
    e = m.get(key)
    return e.get("peak_rss_mb") if e and e.get("ok") else None


def evaluate_targets(size: str, m: dict[str, dict[str, Any]], checks: dict[str, Any],
                     budget_bytes: int) -> list[dict[str, Any]]:
    """Every target of issue 9 with its measured ratio and whether it holds in this run."""
    out: list[dict[str, Any]] = []

    def add(target_id: str, text: str, applies_at: str, measured: float | None, threshold: float,
            better: str, extra_ok: bool = True, **detail: Any) -> None:
        holds = None if measured is None else (
            (measured <= threshold if better == "<=" else measured >= threshold) and extra_ok)
        out.append({"id": target_id, "target": text, "applies_at": applies_at,
                    "at_target_size": size == applies_at, "measured_ratio": measured,
                    "comparison": better, "threshold": threshold, "holds": holds, **detail})

    f1 = _work(m, "floor_f1_group_by")
    add("dbt_build_le_3x_f1", "dbt build <= 3 x F1 (bare GROUP BY), at 30M rows", "30m",
        _ratio(_work(m, "dbt_build"), f1), 3, "<=",
        measured_s=_work(m, "dbt_build"), f1_s=f1)
    add("nightly_le_5x_f1", "whole nightly <= 5 x F1, at 30M rows", "30m",
        _ratio(_work(m, "nightly_full"), f1), 5, "<=",
        measured_s=_work(m, "nightly_full"), f1_s=f1,
        note=f"the whole nightly is the full rebuild over the first {DAYS - 1} nights; F1 "
             f"scans all {DAYS} days")
    path_s = None
    if _work(m, "ingest") is not None and _work(m, "rating_models") is not None:
        path_s = round(_work(m, "ingest") + _work(m, "rating_models"), 3)
    path_peak = max((p for p in (_peak(m, "ingest"), _peak(m, "rating_models")) if p), default=None)
    speed = _ratio(_work(m, "pandas_rating"), path_s)
    memory = _ratio(path_peak, _peak(m, "pandas_rating"))
    add("duckdb_10x_faster_than_pandas",
        "the DuckDB path >= 10 x faster than pandas, with <= 1/3 of its peak memory, at 30M rows",
        "30m", speed, 10, ">=", extra_ok=memory is not None and memory <= 1 / 3,
        measured_memory_ratio=memory, memory_threshold=round(1 / 3, 3),
        duckdb_path_s=path_s, duckdb_path_peak_rss_mb=path_peak,
        pandas_s=_work(m, "pandas_rating"), pandas_peak_rss_mb=_peak(m, "pandas_rating"),
        sql_rating_speed_ratio=_ratio(_work(m, "pandas_rating"), _work(m, "sql_rating")),
        sql_rating_memory_ratio=_ratio(_peak(m, "sql_rating"), _peak(m, "pandas_rating")),
        note="DuckDB path = meterline's ingest of every night + dbt build of the rating models "
             "(+fct_billable_usage); sql_rating_* = the same rating as one DuckDB query")
    identical = checks.get("incremental_equals_full", {}).get("identical") is True
    add("incremental_le_0_1x_full",
        f"incremental nightly (night {DAYS} on top of {DAYS - 1}) <= 0.1 x a full rebuild over "
        f"{DAYS - 1} nights, with identical results", "30m",
        _ratio(_work(m, "nightly_incremental"), _work(m, "nightly_full")), 0.1, "<=",
        extra_ok=identical, identical_marts=identical,
        # what no incremental night can go below: dbt's fixed cost alone (every node of the
        # project over a one-account world), as a share of the full rebuild
        dbt_fixed_overhead_ratio=_ratio(_work(m, "dbt_fixed_overhead"), _work(m, "nightly_full")))
    duck_steps = [k for k, e in m.items() if not k.startswith(("postgres", "pandas"))]
    peaks = [e.get("peak_rss_mb") or 0 for k, e in m.items() if k in duck_steps]
    failed = [k for k in duck_steps if not m[k].get("ok")]
    add("300m_under_4gib", "300M rows complete under a 4 GiB memory limit (spilling), no OOM",
        "300m", _ratio(max(peaks, default=None), budget_bytes / 1024**2), 1, "<=",
        extra_ok=not failed, max_peak_rss_mb=max(peaks, default=None),
        budget_mb=budget_bytes // 1024**2, failed_steps=failed,
        oom=[k for k in failed if m[k].get("oom")])
    import_s = ((m.get("checks_gx") or {}).get("phases") or {}).get("import_gx", {}).get("work_s")
    gx = _work(m, "checks_gx")
    add("gx_le_2x_sql", "the GX suite <= 2 x the equivalent hand-written SQL checks", "any",
        _ratio(gx, _work(m, "checks_sql")), 2, "<=",
        gx_s=gx, sql_s=_work(m, "checks_sql"), gx_import_s=import_s,
        ratio_without_gx_import=_ratio(None if gx is None or import_s is None else gx - import_s,
                                       _work(m, "checks_sql")),
        same_outcomes=checks.get("gx_equals_sql", {}).get("same"))
    overhead = _work(m, "dbt_fixed_overhead")
    add("dbt_overhead_le_15s", "dbt's fixed overhead <= 15 s, at 1M rows", "1m",
        _ratio(overhead, 15.0), 1, "<=", measured_s=overhead,
        dbt_timing=((m.get("dbt_fixed_overhead") or {}).get("detail") or {}).get("dbt_timing"),
        note=f"dbt build over a one-account, {TINY_NIGHTS}-night world; ratio = seconds / 15")
    for t in out:
        if t["applies_at"] == "any":
            t["at_target_size"] = True
    return out


# ---------------------------------------------------------------------------------------------
# the run


@contextlib.contextmanager
def _postgres_database(admin_url: str) -> Iterator[str]:
    import psycopg

    name = f"meterline_bench_{secrets.token_hex(5)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_version(admin_url: str) -> str | None:
    import psycopg

    with contextlib.suppress(Exception), psycopg.connect(admin_url, connect_timeout=5) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])
    return None


def _fixed_overhead(steps: Steps, work: Path, until: str,
                    duckdb_settings: dict[str, str] | None) -> None:
    """dbt's fixed overhead: `dbt build --full-refresh` over a one-account, one-night world."""
    tiny = make_world(work / "tiny_world", TINY_ROWS)
    t_dir = work / "T"
    t_cfg = str(_toml(t_dir / "meterline.toml", tiny,
                      f"duckdb:///{t_dir / 'warehouse.duckdb'}", t_dir / "state",
                      duckdb_settings))
    with contextlib.suppress(StepFailed):
        steps.run("T_stripe_history", "stripe_history",
                  {"config": t_cfg, "stripe_dir": str(tiny.stripe_dir), "until": until},
                  "set-up: Stripe history", setup=True)
        steps.run("T_ingest", "ingest", {"config": t_cfg, "days": _nights(tiny, 0, TINY_NIGHTS)},
                  "set-up: ingest", setup=True)
        steps.run("T_dbt_parse", "dbt_parse", {"config": t_cfg}, "set-up: dbt parse (cold)",
                  setup=True)
        steps.run("dbt_fixed_overhead", "dbt_build", {"config": t_cfg, "full_refresh": True},
                  f"dbt build over 1 account, {TINY_NIGHTS} night(s)")


def run_bench(size: str, out_dir: Path, json_only: bool = False, postgres: bool = True, *,
              work_dir: Path | None = None, keep: bool = False,
              pg_admin_url: str | None = None, memory_budget_bytes: int | None = None,
              nightly_only: bool = False, progress: Progress = _stderr) -> dict[str, Any]:
    """Run the bench at `size` (smoke, 1m, 30m, 300m); write `<out_dir>/<size>-<ts>.json`
    (and `.md` unless `json_only`) and return the results. `nightly_only`: the floor and
    warehouse B (the whole nightly, then the incremental night) only — what a deployment runs;
    no stage alone, no pandas or SQL rating, no fixed overhead, no PostgreSQL (a 300M run in
    the time it takes B alone)."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r} (known: {', '.join(SIZES)})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")  # file name only
    work = Path(tempfile.mkdtemp(prefix=f"meterline-bench-{size}-", dir=work_dir))
    pg_admin_url = pg_admin_url or os.environ.get(
        "METERLINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    budget = memory_budget_bytes or MEMORY_BUDGET_BYTES
    limited = size in MEMORY_LIMITED_SIZES or memory_budget_bytes is not None
    duckdb_settings = None
    if limited:
        (work / "duckdb_tmp").mkdir(parents=True, exist_ok=True)
        duckdb_settings = {"memory_limit": f"{int(budget * DUCKDB_SHARE_OF_BUDGET) // 1024**2}MiB",
                           "temp_directory": str(work / "duckdb_tmp")}
    steps = Steps(work, progress, duckdb_settings)
    m = steps.measurements
    checks: dict[str, Any] = {}
    notes: list[str] = []
    skipped: dict[str, str] = {}
    disk: dict[str, float] = {}  # MiB on disk: the world's files, each warehouse at its largest
    started = time.perf_counter()
    result: dict[str, Any] = {"size": size, "target_rows": SIZES[size], "machine": machine(),
                              "started_at": stamp, "git": _git(),
                              "duckdb_settings": duckdb_settings, "nightly_only": nightly_only}
    try:
        progress(f"bench: generating the {size} world in {work} ...")
        t = time.perf_counter()
        world = make_world(work / "world", SIZES[size])
        result["world"] = {**world.to_json(), "generate_s": round(time.perf_counter() - t, 2)}
        disk["world"] = _disk_mb(world.root)
        progress(f"bench: world: {world.rows} metering rows, {world.accounts} accounts, "
                 f"{world.days} nights ({result['world']['generate_s']} s)")
        glob = world.usage_glob
        as_of = dt.datetime.combine(world.last_day + dt.timedelta(days=1), dt.time()).isoformat()
        until = dt.datetime.combine(world.first_day, dt.time()).isoformat()
        all_nights = _nights(world, 0, world.days)

        # the floor
        with contextlib.suppress(StepFailed):
            steps.run("floor_f0_sum", "floor_sum", {"glob": glob}, "F0: bare DuckDB sum")
            steps.run("floor_f1_group_by", "floor_group", {"glob": glob},
                      "F1: bare GROUP BY account, category, period")

        def prepare_warehouse(name: str, folder: Path) -> str:
            """A warehouse's config, its Stripe history loaded and dbt's parse cache warm."""
            cfg = str(_toml(folder / "meterline.toml", world,
                            f"duckdb:///{folder / 'warehouse.duckdb'}", folder / "state",
                            duckdb_settings))
            steps.run(f"{name}_stripe_history", "stripe_history",
                      {"config": cfg, "stripe_dir": str(world.stripe_dir), "until": until},
                      "set-up: Stripe history", setup=True)
            steps.run(f"{name}_dbt_parse", "dbt_parse", {"config": cfg}, "set-up: dbt parse (cold)",
                      setup=True)
            return cfg

        # warehouse A: every stage on its own, over every night
        a_dir = work / "A"
        snap_a = None
        billable_a = work / "billable_a.parquet"
        if nightly_only:
            for key in ("ingest", "rating_models", "dbt_build", "reconcile", "checks_gx",
                        "checks_sql", "exports", "pandas_rating", "sql_rating",
                        "dbt_fixed_overhead", "postgres_nightly"):
                skipped[key] = "not run (--nightly-only)"
        if not nightly_only:
            try:
                a_cfg = prepare_warehouse("A", a_dir)
                steps.run("ingest", "ingest", {"config": a_cfg, "days": all_nights},
                          f"ingest, {world.days} nights")
                steps.run("rating_models", "rating_models", {"config": a_cfg},
                          "dbt build of the rating models (+fct_billable_usage, no tests)")
                steps.run("dbt_build", "dbt_build", {"config": a_cfg, "full_refresh": True},
                          "dbt build from raw (--full-refresh), every model and test")
                steps.run("reconcile", "reconcile", {"config": a_cfg},
                          "reconciliation stage (GX checkpoint, history, Data Docs)")
                gx = steps.run("checks_gx", "checks_gx", {"config": a_cfg}, "GX suites alone")
                sql = steps.run("checks_sql", "checks_sql", {"config": a_cfg},
                                "the same checks, hand-written SQL")
                differ = sorted(k for k in set(gx["outcomes"]) | set(sql["outcomes"])
                                if gx["outcomes"].get(k) != sql["outcomes"].get(k))
                checks["gx_equals_sql"] = {"same": not differ, "differ": differ,
                                           "gx": gx["outcomes"], "sql": sql["outcomes"]}
                snap_a = steps.run("A_snapshot", "snapshot",
                                   {"config": a_cfg, "billable_out": str(billable_a),
                                    "exclude": DIGEST_EXCLUDED},
                                   "not measured: mart digests", setup=True)
                steps.run("exports", "exports", {"config": a_cfg, "period": PERIOD},
                          f"exports: close {PERIOD}")
            except StepFailed as exc:
                snap_a = None
                notes.append(f"warehouse A stopped at {exc.key}: {exc.message}")

        # the same rating elsewhere
        rating_args = {"glob": glob, "billing": str(world.billing_path), "as_of": as_of}
        if nightly_only:
            pass
        elif size in PANDAS_SIZES:
            with contextlib.suppress(StepFailed):
                pandas_out = work / "pandas_rating.parquet"
                steps.run("pandas_rating", "pandas_rating", {**rating_args, "out": str(pandas_out)},
                          "the same rating in pandas")
                if snap_a is not None:
                    checks["pandas_equals_meterline"] = {
                        **_compare_rating(billable_a, pandas_out),
                        "invoice_usage_lines": snap_a["usage_lines"]}
        else:
            skipped["pandas_rating"] = (f"not run at {size}: the straightforward pandas rating "
                                        "holds every usage row in memory (tens of GiB)")
        if not nightly_only:
            with contextlib.suppress(StepFailed):
                sql_out = work / "sql_rating.parquet"
                steps.run("sql_rating", "sql_rating", {**rating_args, "out": str(sql_out)},
                          "the same rating as one DuckDB query")
                if snap_a is not None:
                    checks["sql_rating_equals_meterline"] = _compare_rating(billable_a, sql_out)
        if not nightly_only:
            disk["warehouse_a"] = _disk_mb(a_dir)
        if not keep:
            shutil.rmtree(a_dir, ignore_errors=True)

        # warehouse B: the whole nightly, then the incremental night
        b_dir = work / "B"
        try:
            b_cfg = prepare_warehouse("B", b_dir)
            steps.run("nightly_full", "nightly",
                      {"config": b_cfg, "days": _nights(world, 0, world.days - 1)},
                      f"whole nightly: full rebuild over {world.days - 1} nights")
            steps.run("nightly_incremental", "nightly",
                      {"config": b_cfg, "days": _nights(world, world.days - 1, world.days)},
                      f"incremental nightly: night {world.days} on top of {world.days - 1}")
            snap_b = steps.run("B_snapshot", "snapshot",
                               {"config": b_cfg, "billable_out": str(work / "billable_b.parquet"),
                                "exclude": DIGEST_EXCLUDED},
                               "not measured: mart digests", setup=True)
            if duckdb_settings:
                checks["warehouse_memory_limit"] = {
                    "configured": duckdb_settings["memory_limit"],
                    "in_effect": snap_b.get("duckdb_memory_limit")}
            if snap_a is not None:
                checks["incremental_equals_full"] = _compare_digests(snap_a["digests"],
                                                                     snap_b["digests"])
        except StepFailed as exc:
            notes.append(f"warehouse B stopped at {exc.key}: {exc.message}")
        disk["warehouse_b"] = _disk_mb(b_dir)
        if not keep:
            shutil.rmtree(b_dir, ignore_errors=True)

        # dbt's fixed overhead: a one-account, one-night world
        if not nightly_only:
            _fixed_overhead(steps, work, until, duckdb_settings)

        # PostgreSQL
        if nightly_only:
            pass
        elif postgres and size in POSTGRES_SIZES:
            result["machine"]["postgres"] = _pg_version(pg_admin_url)
            try:
                with _postgres_database(pg_admin_url) as pg_url:
                    p_dir = work / "P"
                    p_cfg = str(_toml(p_dir / "meterline.toml", world, pg_url, p_dir / "state"))
                    steps.run("P_stripe_history", "stripe_history",
                              {"config": p_cfg, "stripe_dir": str(world.stripe_dir),
                               "until": until}, "set-up: Stripe history", setup=True)
                    steps.run("P_dbt_parse", "dbt_parse", {"config": p_cfg},
                              "set-up: dbt parse (cold)", setup=True)
                    steps.run("postgres_nightly", "nightly", {"config": p_cfg, "days": all_nights},
                              f"PostgreSQL: whole nightly over {world.days} nights")
                    billable_p = work / "billable_p.parquet"
                    steps.run("P_snapshot", "snapshot",
                              {"config": p_cfg, "billable_out": str(billable_p)},
                              "not measured: rated usage", setup=True)
                    if billable_a.exists():
                        cmp = _compare_rating(billable_a, billable_p)
                        checks["postgres_equals_duckdb"] = cmp
            except StepFailed as exc:
                notes.append(f"PostgreSQL stopped at {exc.key}: {exc.message}")
            except Exception as exc:  # noqa: BLE001 - no server: say so, the rest stands
                skipped["postgres_nightly"] = f"PostgreSQL at {pg_admin_url.split('@')[-1]}: {exc}"
        elif postgres:
            skipped["postgres_nightly"] = f"not run at {size} (PostgreSQL runs at 1M and 30M)"
        else:
            skipped["postgres_nightly"] = "not requested (--no-postgres)"
    finally:
        result["total_s"] = round(time.perf_counter() - started, 1)
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            notes.append(f"work folder kept: {work}")

    derived = {}
    if _work(m, "ingest") is not None and _work(m, "rating_models") is not None:
        derived["duckdb_rating_path"] = {
            "what": "ingest + rating models (the DuckDB path to the pandas numbers)",
            "work_s": round(_work(m, "ingest") + _work(m, "rating_models"), 3),
            "peak_rss_mb": max(_peak(m, "ingest") or 0, _peak(m, "rating_models") or 0)}
    result["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result.update(disk_mb=disk, measurements=m, derived=derived, setup=steps.setup,
                  skipped=skipped,
                  checks=checks, targets=evaluate_targets(size, m, checks, budget), notes=notes)
    result["notes"] += _standing_notes(size)
    base = out_dir / f"{size}-{stamp}"
    base.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n",
                                         encoding="utf-8")
    result["files"] = {"json": str(base.with_suffix(".json"))}
    if not json_only:
        base.with_suffix(".md").write_text(markdown(result), encoding="utf-8")
        result["files"]["md"] = str(base.with_suffix(".md"))
    return result


def _standing_notes(size: str) -> list[str]:
    return [
        "work_s is the step's own work, timed inside its process (lazy imports included, "
        "interpreter start-up excluded); wall_s adds the process start; peak RSS is the "
        "step process's high-water mark (VmHWM), per phase reset through "
        "/proc/self/clear_refs. Targets use work_s.",
        "Stripe: customers and subscriptions in proportion, loaded once as history; the world's "
        "nights create no Stripe object, so each night's Stripe extraction (real SDK calls to a "
        "local fixture server) lists nothing (bench/world.py).",
        "PostgreSQL peak RSS is the client process only; the server's memory is not counted.",
        "Other work may share the machine: see load_avg_at_start/end; compare ratios of one run.",
        "Every warehouse's state folder gets a `dbt parse` first (set-up, its time in `setup`): "
        "the measured dbt steps start from dbt's partial-parse cache, as a deployed nightly "
        "does from the night before; a cold parse costs the set-up step's time once more.",
    ]


# ---------------------------------------------------------------------------------------------
# Markdown


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def markdown(r: dict[str, Any]) -> str:
    mach = r["machine"]
    w = r.get("world", {})
    lines = [
        f"# meterline bench: {r['size']}",
        "",
        f"{_fmt(w.get('rows'))} metering rows, {_fmt(w.get('accounts'))} accounts, "
        f"{w.get('days')} nights ({w.get('first_day')} .. {w.get('last_day')}); "
        f"run {r['started_at']}, {r['total_s']} s in all.",
        "",
        f"Machine: {mach['cpu']}, {mach['cpus']} CPUs, {mach['memory_gib']} GiB RAM, "
        f"{mach['os']}, Python {mach['python']}; load average {mach['load_avg_at_start']} at "
        f"start, {r.get('load_avg_at_end')} at end. "
        + ", ".join(f"{k} {v}" for k, v in mach["versions"].items())
        + (f", PostgreSQL {mach['postgres']}" if mach.get("postgres") else "") + ".",
        "",
    ]
    if r.get("duckdb_settings"):
        lines += [f"DuckDB settings: {r['duckdb_settings']}", ""]
    lines += ["| step | what | work (s) | wall (s) | peak RSS (MiB) |", "| --- | --- | ---: | ---: | ---: |"]
    for key, e in r["measurements"].items():
        if not e.get("ok"):
            lines.append(f"| {key} | {e['what']} | **failed** | {_fmt(e.get('wall_s'))} | "
                         f"{_fmt(e.get('peak_rss_mb'), 0)} |")
            continue
        lines.append(f"| {key} | {e['what']} | {_fmt(e['work_s'])} | {_fmt(e['wall_s'])} | "
                     f"{_fmt(e['peak_rss_mb'], 0)} |")
        for name, p in (e.get("phases") or {}).items():
            lines.append(f"| ↳ {name} | | {_fmt(p['work_s'])} | | {_fmt(p.get('peak_rss_mb'), 0)} |")
    for key, d in r.get("derived", {}).items():
        lines.append(f"| {key} | {d['what']} | {_fmt(d['work_s'])} | | {_fmt(d['peak_rss_mb'], 0)} |")
    for key, why in r.get("skipped", {}).items():
        lines.append(f"| {key} | skipped: {why} | | | |")
    lines += ["", "## Targets", "",
              "| target | measured | threshold | holds here | at its size? |",
              "| --- | ---: | ---: | :---: | :---: |"]
    for t in r["targets"]:
        measured = _fmt(t["measured_ratio"], 3)
        if t.get("measured_memory_ratio") is not None:
            measured += f" (memory {t['measured_memory_ratio']:.3f})"
        if t.get("dbt_fixed_overhead_ratio") is not None:
            measured += f" (dbt's fixed cost alone {t['dbt_fixed_overhead_ratio']:.3f})"
        threshold = f"{t['comparison']} {t['threshold']:g}"
        if t.get("memory_threshold"):
            threshold += f" (memory <= {t['memory_threshold']:.3f})"
        lines.append(f"| {t['target']} | {measured} | {threshold} | {_fmt(t['holds'])} | "
                     f"{'yes' if t['at_target_size'] else 'no (' + t['applies_at'] + ')'} |")
    timings = [(k, e["detail"]["dbt_timing"]) for k, e in r["measurements"].items()
               if e.get("ok") and (e.get("detail") or {}).get("dbt_timing")]
    if timings:
        lines += ["", "## Where dbt's time goes", "",
                  "dbt's own elapsed time and the summed execution time of its nodes by type "
                  "(meterline_run_results.json); the rest of the step's work is dbt's start-up (import, "
                  "parse) and meterline's.", "",
                  "| step | dbt elapsed (s) | models | tests | unit tests | seeds |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for key, t in timings:
            cells = []
            for kind in ("model", "test", "unit_test", "seed"):
                e = t["by_type"].get(kind)
                cells.append(f"{e['nodes']}: {e['execution_s']:.1f} s" if e else "—")
            lines.append(f"| {key} | {_fmt(t['elapsed_s'])} | " + " | ".join(cells) + " |")
    if r.get("disk_mb"):
        lines += ["", "Disk (MiB): " + ", ".join(f"{k} {_fmt(v, 1)}" for k, v in r["disk_mb"].items())]
    lines += ["", "## Checks", ""]
    for name, c in r["checks"].items():
        if "configured" in c:  # a setting: what was asked, what the engine reports
            lines.append(f"- {name}: configured {c['configured']}, in effect {_fmt(c['in_effect'])}")
            continue
        ok = c.get("equal", c.get("identical", c.get("same")))
        extra = ""
        if c.get("differ"):
            extra = f": differ {c['differ']}"
        if c.get("only_in_one"):
            extra += f"; only in one warehouse (the project changed during the run?) {c['only_in_one']}"
        if "rows" in c:
            extra += f" ({_fmt(c['rows'])} rows)"
        lines.append(f"- {name}: {_fmt(ok)}{extra}")
    lines += ["", "## Notes", ""] + [f"- {n}" for n in r["notes"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", action="append", choices=list(SIZES),
                    help="smoke (100k rows), 1m, 30m or 300m (opt-in); repeat for several")
    ap.add_argument("--json", action="store_true", help="print the JSON results, not Markdown")
    ap.add_argument("--out", type=Path, default=RESULTS_DIR)
    ap.add_argument("--work", type=Path, default=None, help="folder for the generated data")
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--memory-budget-gib", type=float, default=None,
                    help="300m: the memory budget (default 4)")
    ap.add_argument("--nightly-only", action="store_true",
                    help="the floor and the whole nightly + incremental night only (warehouse B)")
    args = ap.parse_args(argv)
    results = []
    for size in args.size or ["1m"]:
        budget = int(args.memory_budget_gib * GIB) if args.memory_budget_gib else None
        r = run_bench(size, args.out, json_only=args.json, postgres=not args.no_postgres,
                      work_dir=args.work, keep=args.keep, memory_budget_bytes=budget,
                      nightly_only=args.nightly_only)
        results.append(r)
        print(json.dumps(r, indent=2, default=str) if args.json else markdown(r), flush=True)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
