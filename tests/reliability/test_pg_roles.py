"""deploy/postgres-roles.sql grants least privilege: ingest writes raw only, dbt reads raw and
ledger and builds its own schemas, ledger (meterline's bookkeeping) writes ledger only and reads
the rest, reporting reads marts. Each limit is proved with a real statement by a
LOGIN role acting as its group role, on a fresh database with the tables the pipeline's own
`ensure_raw` makes; a grant too wide (or too narrow) fails the test that names it."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
from conftest import PG_ADMIN_URL, ROOT, unavailable
from psycopg.conninfo import conninfo_to_dict

pytestmark = pytest.mark.postgres

SCRIPT = ROOT / "deploy" / "postgres-roles.sql"
DUTIES = ("ingest", "dbt", "ledger", "reporting")


@dataclass
class Warehouse:
    """A database with the roles applied: one group role and one LOGIN member per duty."""

    db: str
    roles: dict[str, str]
    logins: dict[str, str]
    outsider: str  # a LOGIN role in none of the groups
    password: str
    opened: list[psycopg.Connection] = field(default_factory=list)

    def kwargs(self, user: str | None = None) -> dict[str, object]:
        base = conninfo_to_dict(PG_ADMIN_URL)
        out = {**base, "dbname": self.db, "connect_timeout": 5}
        if user is not None:
            out.update(user=user, password=self.password)
        return out

    def connect(self, who: str) -> psycopg.Connection:
        """`admin` (the test's superuser) or a duty's LOGIN role."""
        user = None if who == "admin" else self.logins.get(who, who)
        conn = psycopg.connect(**self.kwargs(user), autocommit=True)
        self.opened.append(conn)
        return conn

    def apply_script(self, name_db: bool = False) -> None:
        """psql -f the script, connected to the database or (`name_db`) naming it with -v db."""
        psql = shutil.which("psql")
        if psql is None:
            unavailable("psql is not installed (apt-get install postgresql-client)")
        args = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(SCRIPT)]
        for duty in DUTIES:
            args += ["-v", f"{duty}_role={self.roles[duty]}", "-v", f"{duty}_login={self.logins[duty]}"]
        conninfo = self.kwargs()
        if name_db:
            args += ["-v", f"db={self.db}"]
            conninfo["dbname"] = conninfo_to_dict(PG_ADMIN_URL).get("dbname", "postgres")
        dsn = " ".join(f"{k}={v}" for k, v in conninfo.items())
        res = subprocess.run([*args, "-d", dsn], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, f"psql -f {SCRIPT.name} failed:\n{res.stderr}"


def _drop_all(admin_url: str, wh: Warehouse) -> None:
    errors = []
    for conn in wh.opened:
        conn.close()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        steps = [f'DROP DATABASE IF EXISTS "{wh.db}" WITH (FORCE)']
        steps += [f'DROP ROLE IF EXISTS "{r}"' for r in [*wh.logins.values(), wh.outsider]]
        steps += [f'DROP ROLE IF EXISTS "{r}"' for r in wh.roles.values()]
        for sql in steps:
            try:
                admin.execute(sql)
            except psycopg.Error as exc:  # go on: every role must go, whatever failed before
                errors.append(f"{sql}: {exc}")
    assert not errors, "cleanup left something behind: " + "; ".join(errors)


@pytest.fixture(scope="module")
def wh() -> Iterator[Warehouse]:
    from ingest.load import ensure_raw
    from meterline.config import WarehouseTarget
    from meterline.ledger import ensure_ledger
    from meterline.warehouse import open_connection

    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    tag = secrets.token_hex(5)
    wh = Warehouse(
        db=f"meterline_t_{tag}",
        roles={d: f"meterline_t_{d}_{tag}" for d in DUTIES},
        logins={d: f"meterline_t_{d}_login_{tag}" for d in DUTIES},
        outsider=f"meterline_t_outsider_{tag}",
        password=secrets.token_hex(12),
    )
    try:
        with admin:
            admin.execute(f'CREATE DATABASE "{wh.db}"')
            for login in [*wh.logins.values(), wh.outsider]:
                admin.execute(f"CREATE ROLE \"{login}\" LOGIN PASSWORD '{wh.password}'")
        # a warehouse built before the roles: its tables are handed to the roles by the script
        with wh.connect("admin") as before:
            before.execute("CREATE SCHEMA raw; CREATE SCHEMA marts")
            before.execute("CREATE TABLE raw.loaded_before (id int); INSERT INTO raw.loaded_before VALUES (1)")
            before.execute("CREATE TABLE marts.built_before (id int); INSERT INTO marts.built_before VALUES (1)")
        wh.apply_script(name_db=True)
        wh.apply_script()  # rerunnable
        # the pipeline's own schema and table creation: raw's as the ingest login, the ledger's
        # as the ledger login, as the runner does with a login per stage
        for duty, ensure in (("ingest", lambda c: ensure_raw(c, ledger=False)), ("ledger", ensure_ledger),
                             ("ledger", ensure_raw)):  # every stage ensures its tables first: again
            c = wh.logins[duty]
            target = WarehouseTarget(url=f"postgresql://{c}@/{wh.db}", kind="postgres",
                                     host=str(wh.kwargs().get("host", "")),
                                     port=int(wh.kwargs().get("port") or 5432),
                                     user=c, password=wh.password, dbname=wh.db)
            conn = open_connection(target)
            try:
                ensure(conn)
            finally:
                conn.close()
        yield wh
    finally:
        _drop_all(PG_ADMIN_URL, wh)


def denied(conn: psycopg.Connection, sql: str, limit: str) -> None:
    try:
        conn.execute(sql)
    except psycopg.errors.InsufficientPrivilege:
        return
    pytest.fail(f"too wide: {limit}, yet `{sql}` succeeded as {conn.info.user}")


def allowed(conn: psycopg.Connection, sql: str, duty: str) -> None:
    try:
        conn.execute(sql)
    except psycopg.errors.InsufficientPrivilege as exc:
        pytest.fail(f"too narrow: {duty}, but `{sql}` was refused as {conn.info.user}: {exc}")


def owner(wh: Warehouse, schema: str, table: str) -> str:
    row = wh.connect("admin").execute(
        "SELECT tableowner FROM pg_tables WHERE schemaname = %s AND tablename = %s",
        [schema, table]).fetchone()
    assert row is not None, f"{schema}.{table} does not exist"
    return row[0]


LIMITS: dict[str, list[tuple[str, str]]] = {  # duty -> (a statement it must be refused, the limit)
    "ingest": [
        ("CREATE TABLE marts.by_ingest (id int)", "ingest creates nothing in marts"),
        ("CREATE TABLE staging.by_ingest (id int)", "ingest creates nothing in dbt's schemas"),
        ("SELECT * FROM marts.built_before", "ingest does not read marts"),
        ("INSERT INTO marts.built_before VALUES (9)", "ingest does not write marts"),
        ("CREATE SCHEMA by_ingest", "ingest creates no schema"),
        ("CREATE TABLE public.by_ingest (id int)", "nobody creates in schema public"),
        ("CREATE TEMP TABLE by_ingest (id int)", "ingest makes no temporary table"),
        ("INSERT INTO ledger.period_locks (period) VALUES ('2026-10')", "ingest does not write the ledger"),
        ("SELECT * FROM ledger.issued_invoices", "ingest does not read the ledger"),
        ("CREATE TABLE ledger.by_ingest (id int)", "ingest creates nothing in ledger"),
    ],
    "ledger": [
        ("INSERT INTO raw.batch_ledger (batch_id) VALUES ('b_ledger')", "ledger does not write raw"),
        ("DELETE FROM raw.batch_ledger", "ledger does not delete from raw"),
        ("CREATE TABLE raw.by_ledger (id int)", "ledger creates nothing in raw"),
        ("INSERT INTO marts.built_before VALUES (9)", "ledger does not write marts"),
        ("CREATE TABLE marts.by_ledger (id int)", "ledger creates nothing in marts"),
        ("DROP TABLE marts.built_before", "ledger drops nothing in marts"),
        ("CREATE SCHEMA by_ledger", "ledger creates no schema"),
        ("CREATE TABLE public.by_ledger (id int)", "nobody creates in schema public"),
        ("CREATE TEMP TABLE by_ledger (id int)", "ledger makes no temporary table"),
    ],
    "dbt": [
        ("INSERT INTO raw.batch_ledger (batch_id) VALUES ('b_dbt')", "dbt does not write raw"),
        ("UPDATE raw.loaded_before SET id = 0", "dbt does not change raw"),
        ("DELETE FROM raw.batch_ledger", "dbt does not delete from raw"),
        ("TRUNCATE raw.quarantine", "dbt does not empty raw"),
        ("CREATE TABLE raw.by_dbt (id int)", "dbt creates nothing in raw"),
        ("INSERT INTO ledger.period_locks (period) VALUES ('2026-10')", "dbt does not write the ledger"),
        ("CREATE TABLE ledger.by_dbt (id int)", "dbt creates nothing in ledger"),
        ("DROP TABLE raw.batch_ledger", "dbt drops nothing in raw"),
        ("CREATE SCHEMA by_dbt", "dbt creates no schema (the script makes its schemas)"),
        ("CREATE TABLE public.by_dbt (id int)", "nobody creates in schema public"),
    ],
    "reporting": [
        ("SELECT * FROM raw.batch_ledger", "reporting does not read raw"),
        ("SELECT * FROM raw.loaded_before", "reporting does not read raw tables made before the roles"),
        ("SELECT * FROM ledger.issued_invoices", "reporting does not read the ledger"),
        ("SELECT * FROM staging.stg_hidden", "reporting does not read staging"),
        ("INSERT INTO marts.fct_target VALUES (2)", "reporting does not write marts"),
        ("UPDATE marts.fct_target SET id = 3", "reporting does not change marts"),
        ("DELETE FROM marts.fct_target", "reporting does not delete from marts"),
        ("CREATE TABLE marts.by_reporting (id int)", "reporting creates nothing in marts"),
        ("CREATE TABLE seeds.by_reporting (id int)", "reporting creates nothing in seeds"),
        ("CREATE TABLE public.by_reporting (id int)", "nobody creates in schema public"),
        ("CREATE TEMP TABLE by_reporting (id int)", "reporting makes no temporary table"),
        ("CREATE SCHEMA by_reporting", "reporting creates no schema"),
    ],
}


def test_logins_act_as_their_group_role(wh: Warehouse) -> None:
    for duty in DUTIES:
        user = wh.connect(duty).execute("SELECT current_user").fetchone()[0]
        assert user == wh.roles[duty], f"the {duty} login acts as {user}, not its group role"
    for duty in DUTIES:
        attrs = wh.connect("admin").execute(
            "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = %s",
            [wh.roles[duty]]).fetchone()
        assert attrs == (False, False, False, False), f"group role {duty}: {attrs}"


def test_ingest_writes_raw(wh: Warehouse) -> None:
    ingest = wh.connect("ingest")
    assert owner(wh, "raw", "batch_ledger") == wh.roles["ingest"], "ensure_raw's tables belong to the ingest role"
    assert owner(wh, "raw", "loaded_before") == wh.roles["ingest"], "the script hands raw's tables to ingest"
    allowed(ingest, "INSERT INTO raw.batch_ledger (batch_id, source) VALUES ('b_ingest', 'metering')",
            "ingest loads batches into raw")
    allowed(ingest, "DELETE FROM raw.batch_ledger WHERE batch_id = 'b_ingest'", "ingest replaces a batch")
    allowed(ingest, "INSERT INTO raw.quarantine (raw_table) VALUES ('metering_usage_hourly')",
            "ingest quarantines rows")
    allowed(ingest, "INSERT INTO raw.loaded_before VALUES (2)", "ingest writes raw tables made before the roles")
    assert owner(wh, "ledger", "period_locks") == wh.roles["ledger"], "ensure_ledger's tables belong to ledger"


def test_ledger_writes_the_ledger_and_reads_the_rest(wh: Warehouse) -> None:
    dbt, ledger = wh.connect("dbt"), wh.connect("ledger")
    dbt.execute("CREATE TABLE IF NOT EXISTS marts.rec_after_grants AS SELECT 1 AS id")
    dbt.execute("CREATE TABLE IF NOT EXISTS intermediate.int_after_grants AS SELECT 1 AS id")
    dbt.execute("CREATE TABLE IF NOT EXISTS seeds.seed_after_grants AS SELECT 1 AS id")
    allowed(ledger, "INSERT INTO ledger.period_locks (period) VALUES ('2026-09')", "ledger locks a period")
    allowed(ledger, "DELETE FROM ledger.period_locks WHERE period = '2026-09'", "ledger reopens a period")
    allowed(ledger, "SELECT count(*) FROM raw.batch_ledger", "ledger reads raw (as_of, status)")
    allowed(ledger, "SELECT count(*) FROM raw.loaded_before", "ledger reads raw tables made before the roles")
    allowed(ledger, "SELECT count(*) FROM marts.rec_after_grants", "ledger reads marts dbt builds later")
    allowed(ledger, "SELECT count(*) FROM marts.built_before", "ledger reads marts made before the roles")
    allowed(ledger, "SELECT count(*) FROM intermediate.int_after_grants", "ledger reads intermediate (checks)")
    allowed(ledger, "SELECT count(*) FROM seeds.seed_after_grants", "ledger reads seeds (currencies)")
    allowed(ledger, "ALTER TABLE ledger.period_locks ADD COLUMN IF NOT EXISTS note_by_ledger text",
            "ledger migrates its tables")
    dbt_reads = wh.connect("dbt")
    allowed(dbt_reads, "SELECT count(*) FROM ledger.period_locks", "dbt reads the ledger's tables")


def test_dbt_reads_sources_and_builds_its_schemas(wh: Warehouse) -> None:
    dbt = wh.connect("dbt")
    # batch_ledger and period_locks were created by ingest after the grants: default privileges
    allowed(dbt, "SELECT count(*) FROM raw.batch_ledger", "dbt reads raw")
    allowed(dbt, "SELECT count(*) FROM raw.loaded_before", "dbt reads raw tables made before the roles")
    allowed(dbt, "SELECT count(*) FROM ledger.period_locks", "dbt reads the ledger")
    allowed(dbt, "CREATE VIEW staging.stg_by_dbt AS SELECT batch_id FROM raw.batch_ledger",
            "dbt builds views in staging")
    allowed(dbt, "CREATE TABLE intermediate.int_by_dbt AS SELECT * FROM staging.stg_by_dbt",
            "dbt builds tables in intermediate")
    allowed(dbt, "CREATE TABLE seeds.seed_by_dbt (currency varchar(3))", "dbt loads seeds")
    # a dbt table rebuild of a mart that existed before the roles: new table, swap, drop
    allowed(dbt, "CREATE TABLE marts.built_before__dbt_tmp AS SELECT 1 AS id", "dbt builds marts")
    allowed(dbt, "ALTER TABLE marts.built_before RENAME TO built_before__dbt_backup", "dbt replaces its marts")
    allowed(dbt, "ALTER TABLE marts.built_before__dbt_tmp RENAME TO built_before", "dbt replaces its marts")
    allowed(dbt, "DROP TABLE marts.built_before__dbt_backup", "dbt drops what it replaced")
    allowed(dbt, "CREATE TEMP TABLE unit_by_dbt AS SELECT 1 AS id", "dbt's unit tests make temporary tables")
    assert owner(wh, "marts", "built_before") == wh.roles["dbt"]


def test_reporting_reads_marts(wh: Warehouse) -> None:
    dbt, reporting = wh.connect("dbt"), wh.connect("reporting")
    # built by the dbt login after the grants, as every nightly rebuilds the marts
    dbt.execute("CREATE TABLE marts.fin_after_grants AS SELECT 1 AS amount_minor")
    dbt.execute("CREATE TABLE seeds.currencies_after_grants AS SELECT 'EUR' AS currency, 2 AS minor_unit_exponent")
    allowed(reporting, "SELECT amount_minor FROM marts.fin_after_grants", "reporting reads marts dbt builds later")
    allowed(reporting, "SELECT * FROM seeds.currencies_after_grants",
            "reporting reads the seeds' reference tables (the finance reports read seeds.currencies)")
    allowed(reporting, "SELECT count(*) FROM marts.built_before", "reporting reads marts made before the roles")


def test_a_login_in_no_group_cannot_connect(wh: Warehouse) -> None:
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        wh.connect(wh.outsider)


def test_a_rerun_takes_back_wider_grants(wh: Warehouse) -> None:
    admin = wh.connect("admin")
    r = wh.roles
    admin.execute("CREATE TABLE IF NOT EXISTS marts.widened AS SELECT 1 AS id")
    admin.execute(f'GRANT INSERT ON marts.widened TO "{r["reporting"]}"')
    admin.execute(f'GRANT USAGE ON SCHEMA raw TO "{r["reporting"]}"')
    admin.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA raw TO "{r["reporting"]}"')
    admin.execute(f'GRANT CREATE ON SCHEMA marts TO "{r["ingest"]}"')
    admin.execute(f'GRANT CREATE ON DATABASE "{wh.db}" TO "{r["ingest"]}"')
    admin.execute(f'GRANT INSERT ON ALL TABLES IN SCHEMA raw TO "{r["dbt"]}"')
    reporting, ingest, dbt = wh.connect("reporting"), wh.connect("ingest"), wh.connect("dbt")
    # the limits above do see a grant too wide
    reporting.execute("INSERT INTO marts.widened VALUES (2)")
    reporting.execute("SELECT count(*) FROM raw.batch_ledger")
    wh.apply_script()
    denied(reporting, "INSERT INTO marts.widened VALUES (3)", "a rerun takes back reporting's INSERT")
    denied(reporting, "SELECT count(*) FROM raw.batch_ledger", "a rerun takes back reporting's raw")
    denied(ingest, "CREATE TABLE marts.by_ingest_widened (id int)", "a rerun takes back ingest's CREATE on marts")
    denied(ingest, "CREATE SCHEMA by_ingest_widened", "a rerun takes back ingest's CREATE on the database")
    denied(dbt, "INSERT INTO raw.batch_ledger (batch_id) VALUES ('b_widened')", "a rerun takes back dbt's INSERT on raw")
    allowed(reporting, "SELECT count(*) FROM marts.widened", "reporting still reads marts after a rerun")


@pytest.mark.parametrize("duty", LIMITS)
def test_limits(wh: Warehouse, duty: str) -> None:
    """Every statement in LIMITS[duty] is refused to the duty's login."""
    dbt = wh.connect("dbt")  # tables a limit names that the fixture does not make
    dbt.execute("CREATE TABLE IF NOT EXISTS staging.stg_hidden AS SELECT 1 AS id")
    dbt.execute("CREATE TABLE IF NOT EXISTS marts.fct_target AS SELECT 1 AS id")
    login = wh.connect(duty)
    for sql, limit in LIMITS[duty]:
        denied(login, sql, limit)
