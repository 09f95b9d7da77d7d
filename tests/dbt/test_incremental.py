"""int_metering_usage_validated is incremental by hour (macros/metering_incremental.sql): after
every kind of change a night can bring, the incremental build equals a --full-refresh build of
the same raw data, row for row, on DuckDB and on PostgreSQL; and a build with nothing new
rebuilds no hour.

The changes, on the hand-made world of dbt_world.py: a new batch (a late version of an old hour,
a copy inside the batch, an account billing does not know yet); a billing snapshot that now
knows that account and one that was gone (their rows' quarantine reasons change with no new
metering row); a reloaded night (its batch leaves raw, a replacement arrives); the code that
shapes the rows changing (a new fingerprint rebuilds every hour)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dbt_world as w
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT_DIR = ROOT / "dbt_project"
SELECT = ["--select", "+int_metering_usage_current"]
MODELS = ("int_metering_usage_validated", "int_metering_usage_current")

M_0303 = w._stamp("m_0303b", "2024-03-04 00:30:00", "metering")
M_0302_AGAIN = w._stamp("m_0302r", "2024-03-04 01:30:00", "metering")
BILL_3 = w._stamp("bill_3", "2024-03-04 00:40:00", "billing")
# the incremental builds rank int_metering_usage_validated's rows in build slices of about this
# many raw rows (var metering_slice_rows); the full rebuilds they must equal, in one statement
SLICE_ROWS = 4


def ledger(batch: str, source: str, start: str, end: str) -> tuple:
    return (batch, source, start, end, 1, "x", "loaded", end + " 00:31:00")


NEW_NIGHT = [  # hour_start, account, project, category, outcome, quantity, updated_at, stamp
    ("2024-02-12 00:00:00", "acc_a", "prj1", "span", "accepted", 5100, "2024-03-03 09:00:00", *M_0303),
    ("2024-03-03 07:00:00", "acc_a", "prj1", "error", "accepted", 12, "2024-03-03 08:00:00", *M_0303),
    ("2024-03-03 07:00:00", "acc_a", "prj1", "error", "accepted", 12, "2024-03-03 08:00:00", *M_0303),
    ("2024-03-03 08:00:00", "acc_new", "pn", "error", "accepted", 3, "2024-03-03 08:30:00", *M_0303),
]
SNAPSHOT_3 = [  # billing now knows acc_new, and acc_gone again
    ("acc_a", "Acme", "USD", 1, "cus_a", "2023-12-01 00:00:00", *BILL_3),
    ("acc_j", "Jupiter KK", "JPY", 1, "cus_j", "2023-12-01 00:00:00", *BILL_3),
    ("acc_gone", "Gone Ltd", "USD", 1, "cus_g", "2023-12-01 00:00:00", *BILL_3),
    ("acc_new", "New Co", "USD", 1, "cus_n", "2024-03-03 00:00:00", *BILL_3),
]
RELOADED = [  # night 03-02 reloaded: m_0302's rows leave raw (its 05:00 hour and a copy of a
    # 02-10 version), this replaces them (the source moved the usage to 06:00)
    ("2024-03-02 06:00:00", "acc_a", "prj1", "error", "accepted", 11, "2024-03-02 06:30:00", *M_0302_AGAIN),
]


def metering(rows: list[tuple]) -> str:
    return w.insert_sql("raw", "metering_usage_hourly", w._columns("raw", "metering_usage_hourly"), rows)


# a step: what, statements run before the build, the vars of this and every later build
STEPS: list[tuple[str, list[str], dict[str, Any] | None]] = [
    ("a new night", [
        w.insert_sql("raw", "batch_ledger", w._columns("raw", "batch_ledger"),
                     [ledger("m_0303b", "metering", "2024-03-03", "2024-03-04")]),
        metering(NEW_NIGHT)], None),
    ("a billing snapshot that knows two more accounts", [
        w.insert_sql("raw", "batch_ledger", w._columns("raw", "batch_ledger"),
                     [ledger("bill_3", "billing", "2024-03-03", "2024-03-04")]),
        w.insert_sql("raw", "billing_accounts", w._columns("raw", "billing_accounts"), SNAPSHOT_3)],
     None),
    ("a reloaded night", [
        "DELETE FROM raw.metering_usage_hourly WHERE _batch_id = 'm_0302'",
        "DELETE FROM raw.batch_ledger WHERE batch_id = 'm_0302'",
        w.insert_sql("raw", "batch_ledger", w._columns("raw", "batch_ledger"),
                     [ledger("m_0302r", "metering", "2024-03-02", "2024-03-03")]),
        metering(RELOADED)], None),
    ("a batch's interval end corrected in the ledger", [
        "UPDATE raw.batch_ledger SET interval_end = '2024-03-05 00:00:00' WHERE batch_id = 'm_0303b'"],
     None),
    ("one row of a loaded batch deleted by hand", [
        "DELETE FROM raw.metering_usage_hourly WHERE _batch_id = 'm_0301' AND category = 'span' "
        "AND quantity = 5000"], None),
    ("the outcomes var now accepts 'weird'", [],
     {"metering_outcomes": ["accepted", "filtered", "rate_limited", "invalid", "weird"]}),
]

class Engine:
    """A warehouse holding dbt_world's raw data, and dbt builds against it."""

    def __init__(self, tmp: Path, output: dict[str, Any], sql: Callable[[str], list[tuple]]):
        self.tmp, self.output, self.sql = tmp, output, sql
        self.builds = 0
        self.vars: dict[str, Any] = {}

    def build(self, *extra: str, project: Path = PROJECT_DIR, output: dict[str, Any] | None = None,
              sliced: bool = True) -> None:
        """A build; `sliced`: int_metering_usage_validated in build slices of a few rows (the
        whole world is about SLICE_ROWS x 10), else in one statement (the default var)."""
        res = self.invoke(*extra, project=project, output=output,
                          vars_={**self.vars, "metering_slice_rows": SLICE_ROWS} if sliced else self.vars)
        bad = [f"{r.node.unique_id}: {r.status} {r.message}" for r in (res.result or [])
               if str(r.status) not in ("success", "pass")]
        assert res.success and not bad, (res.exception, bad)

    def invoke(self, *extra: str, project: Path = PROJECT_DIR, output: dict[str, Any] | None = None,
               vars_: dict[str, Any] | None = None) -> Any:
        from dbt.cli.main import dbtRunner

        self.builds += 1
        run = self.tmp / f"build{self.builds}"
        (run / "profiles").mkdir(parents=True)
        profile = {"meterline": {"target": "t", "outputs": {"t": output or self.output}}}
        (run / "profiles" / "profiles.yml").write_text(yaml.safe_dump(profile))
        res = dbtRunner().invoke([
            "build", "--project-dir", str(project), "--profiles-dir", str(run / "profiles"),
            "--target-path", str(run / "target"), "--log-path", str(run / "logs"),
            "--no-use-colors", "--exclude-resource-type", "unit_test", "--indirect-selection",
            "cautious", "--vars", json.dumps(self.vars if vars_ is None else vars_), *SELECT, *extra])
        return res

    def rows(self, model: str, schema: str = "intermediate") -> list[str]:
        return sorted(repr(r) for r in self.sql(f'select * from "{schema}"."{model}"'))

    def changed_hours(self) -> int:
        return self.sql("select count(*) from intermediate.int_metering_usage_changed_hours")[0][0]

    def build_slices(self) -> int:
        return self.sql("select count(distinct build_slice) from intermediate.int_metering_usage_changed_hours")[0][0]


def digest(rows: list[str]) -> str:
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def check_incremental_equals_full(engine: Engine, full: Callable[[], dict[str, list[str]]]) -> None:
    engine.build()  # the first build: every hour, in build slices
    assert engine.changed_hours() == len({r[0] for r in w.METERING_ROWS})
    assert engine.build_slices() >= len(w.METERING_ROWS) // (2 * SLICE_ROWS)
    same_as_full_first = {m: engine.rows(m) for m in MODELS}
    assert same_as_full_first == full(), "a first build in slices differs from one in one statement"
    engine.build()  # nothing new: nothing rebuilt
    assert engine.changed_hours() == 0
    def same_as_full(what: str) -> None:
        incremental = {m: engine.rows(m) for m in MODELS}
        expected = full()
        for m in MODELS:
            assert incremental[m] == expected[m], (what, m, set(incremental[m]) ^ set(expected[m]))

    for what, statements, vars_ in STEPS:
        for statement in statements:
            engine.sql(statement)
        engine.vars = vars_ or engine.vars
        engine.build()
        rebuilt = engine.changed_hours()
        assert 0 < rebuilt < 40, (what, rebuilt)  # a few hours, not the whole table
        same_as_full(what)
    engine.build()  # nothing new: nothing rebuilt
    assert engine.changed_hours() == 0

    # a table built before the fingerprint (no _code_version), holding an hour raw no longer
    # has: the first build rebuilds every hour of either, and drops that hour
    engine.sql("ALTER TABLE intermediate.int_metering_usage_validated DROP COLUMN _code_version")
    engine.sql("DELETE FROM raw.metering_usage_hourly WHERE hour_start = '2024-03-01 10:00:00'")
    held = engine.sql("select count(distinct hour_start) from intermediate.int_metering_usage_validated")[0][0]
    engine.build()
    assert engine.changed_hours() == held
    assert not engine.sql("select 1 from intermediate.int_metering_usage_validated "
                          "where hour_start = '2024-03-01 10:00:00' or _code_version is null")
    same_as_full("the first build after the upgrade")
    validated = engine.rows("int_metering_usage_validated")
    # each change reached the table: the late version is current, acc_gone's and acc_new's
    # rows are valid now, the reloaded night's rows are the replacement's
    assert any("5100" in r and "True, True" in r for r in validated)
    assert not any("acc_gone" in r and "unknown_account" in r for r in validated)
    assert any("acc_new" in r and "None, True, True" in r for r in validated)
    assert not any("m_0302'" in r for r in validated) and any("m_0302r" in r for r in validated)
    assert any("duplicate_key" in r and "m_0303b" in r for r in validated)
    assert any("'weird'" in r and "None, True, True" in r for r in validated)


def fingerprint_change_rebuilds_everything(engine: Engine, tmp: Path) -> None:
    """A deploy that changes the model's code: every hour rebuilds (here: a comment added)."""
    project = tmp / "project_changed"
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    model = project / "models" / "intermediate" / "metering" / "int_metering_usage_validated.sql"
    model.write_text(model.read_text() + "\n-- a change\n")
    before = engine.rows("int_metering_usage_validated")
    engine.build(project=project)
    hours = engine.sql("select count(distinct hour_start) from raw.metering_usage_hourly")[0][0]
    assert engine.changed_hours() == hours
    versions = engine.sql("select count(distinct _code_version) from intermediate.int_metering_usage_validated")
    assert versions == [(1,)]
    assert [r.rsplit(", ", 1)[0] for r in engine.rows("int_metering_usage_validated")] == [
        r.rsplit(", ", 1)[0] for r in before]  # the same rows, a new fingerprint


def test_incremental_equals_full_rebuild_duckdb(tmp_path: Path) -> None:
    import duckdb

    db = tmp_path / "warehouse.duckdb"

    def sql_on(path: Path) -> Callable[[str], list[tuple]]:
        def run(statement: str) -> list[tuple]:
            with duckdb.connect(str(path)) as con:
                cur = con.execute(statement)
                return cur.fetchall() if cur.description else []
        return run

    sql = sql_on(db)
    for statement in w.world_sql():
        sql(statement)
    output = {"type": "duckdb", "path": str(db), "schema": "main", "threads": 1}
    engine = Engine(tmp_path, output, sql)

    def full() -> dict[str, list[str]]:
        copy = tmp_path / f"full{engine.builds}.duckdb"
        sql("CHECKPOINT")  # dbt-duckdb may keep the database open in this process
        shutil.copy(db, copy)
        engine.build("--full-refresh", output={**output, "path": str(copy)}, sliced=False)
        other = Engine(tmp_path, output, sql_on(copy))
        return {m: other.rows(m) for m in MODELS}

    check_incremental_equals_full(engine, full)
    fingerprint_change_rebuilds_everything(engine, tmp_path)
    # a slice size that is not a whole number of rows of at least 1 stops the build, saying so
    for wrong in (0, -5, 2.5, "many", True):
        res = engine.invoke(vars_={**engine.vars, "metering_slice_rows": wrong})
        said = " ".join(str(r.message) for r in (res.result or [])) + str(res.exception)
        assert not res.success and "metering_slice_rows must be a whole number" in said, (wrong, said)


@pytest.fixture
def pg_engine(tmp_path: Path, pg_url: str) -> Iterator[tuple[Engine, str]]:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    def sql(statement: str) -> list[tuple]:
        with psycopg.connect(pg_url, autocommit=True) as con:
            cur = con.execute(statement)
            return cur.fetchall() if cur.description else []

    for statement in w.world_sql():
        sql(statement)
    info = conninfo_to_dict(pg_url)
    output = {"type": "postgres", "host": info.get("host", "127.0.0.1"),
              "port": int(info.get("port", 5432)), "user": info.get("user", "postgres"),
              "password": info.get("password", ""), "dbname": info["dbname"], "schema": "public",
              "threads": 1}
    yield Engine(tmp_path, output, sql), pg_url


@pytest.mark.postgres
def test_incremental_equals_full_rebuild_postgres(pg_engine: tuple[Engine, str]) -> None:
    """The full rebuild: dbt's schemas dropped and rebuilt from the same raw data with
    --full-refresh, in the same database."""
    engine, _ = pg_engine

    def full() -> dict[str, list[str]]:
        # the caller compares this with the incremental state it just read, so the next step
        # builds incrementally on a table equal to it
        for schema in ("intermediate", "staging", "seeds"):
            engine.sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        engine.build("--full-refresh", sliced=False)
        return {m: engine.rows(m) for m in MODELS}

    check_incremental_equals_full(engine, full)


@pytest.mark.slow
def test_demo_world_built_night_by_night_equals_a_full_rebuild(demo_world: Path, tmp_path: Path) -> None:
    """The shared demo world was built by 34 nightly runs (each an incremental build) with
    planted faults (duplicates, late data, an unknown account, a negative quantity): a
    --full-refresh build of a copy changes no table of dbt's."""
    import duckdb
    from conftest import copy_world

    from meterline import dbt
    from meterline.config import load_config

    world = copy_world(demo_world, tmp_path)
    db = world / ".meterline" / "warehouse.duckdb"

    def tables() -> dict[str, str]:
        with duckdb.connect(str(db)) as con:  # as dbt-duckdb opened it in this process
            names = con.execute(
                "select table_schema, table_name from information_schema.tables where table_schema"
                " in ('staging', 'intermediate', 'marts') and table_name <> "
                "'int_metering_usage_changed_hours' order by 1, 2").fetchall()
            return {f"{s}.{t}": digest(sorted(repr(r) for r in con.execute(
                f'select * from "{s}"."{t}"').fetchall())) for s, t in names}

    before = tables()
    assert "intermediate.int_metering_usage_validated" in before and len(before) > 60
    cfg = load_config(world / "meterline.toml", env={})
    dbt.build(cfg, ["--full-refresh"])
    after = tables()
    assert after == before, sorted(k for k in before if before[k] != after.get(k))
