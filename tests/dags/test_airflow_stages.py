"""What the DAG tasks call, without a DAG run: data intervals to nights and periods, the staged
parallel extract + load (the same batches as the CLI's ingest; a load with nothing left to load),
the month close's wait for its nights, configuration from Airflow connections, and the failure
callbacks' messages on an alert channel."""

from __future__ import annotations

import datetime as dt
import fcntl
import importlib
import json
import logging
import secrets
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from dag_helpers import DAGS, airflow_env, make_world, webhook

from meterline.config import load_config, parse_db_url
from meterline.errors import ConfigError, IntervalError, StageError
from meterline.runlock import RunLockedError
from meterline.runner import (
    config_secrets,
    days_between,
    extract_dir,
    extract_source,
    ingest_days,
    load_extracts,
    night_of,
    nights_missing,
    period_of,
)
from meterline.warehouse import connect

# one xdist group with the nightly end-to-end run; the month close run goes beside it. (With
# pytest 9.2 xdist ignores groups, pytest-dev/pytest-xdist#1386: the end-to-end files are
# named to be collected first, so the two long runs start on different workers either way.)
UTC = dt.UTC


def test_night_and_period_of_a_data_interval() -> None:
    d = dt.datetime
    assert night_of(d(2026, 10, 2, tzinfo=UTC), d(2026, 10, 3, tzinfo=UTC)) == dt.date(2026, 10, 2)
    assert night_of(d(2026, 10, 2), d(2026, 10, 3)) == dt.date(2026, 10, 2)  # naive is UTC
    cet = dt.timezone(dt.timedelta(hours=1))
    assert night_of(d(2026, 10, 2, 1, tzinfo=cet), d(2026, 10, 3, 1, tzinfo=cet)) == dt.date(2026, 10, 2)
    for start, end in [(d(2026, 10, 2), d(2026, 10, 2)),          # a manual run's empty interval
                       (d(2026, 10, 2), d(2026, 10, 4)),          # two days
                       (d(2026, 10, 2, 6), d(2026, 10, 3, 6))]:   # not from midnight UTC
        with pytest.raises(IntervalError, match="not one day"):
            night_of(start, end)
    assert period_of(d(2026, 10, 1, tzinfo=UTC), d(2026, 11, 1, tzinfo=UTC)) == "2026-10"
    assert period_of(d(2026, 12, 1), d(2027, 1, 1)) == "2026-12"
    assert period_of(d(2027, 2, 1), d(2027, 3, 1)) == "2027-02"
    # the month close's final night: the day before the interval's end
    end = d(2027, 3, 1, tzinfo=UTC)
    assert night_of(end - dt.timedelta(days=1), end) == dt.date(2027, 2, 28)
    for start, end in [(d(2026, 10, 1), d(2026, 10, 31)), (d(2026, 10, 2), d(2026, 11, 2)),
                       (d(2026, 10, 1), d(2026, 12, 1))]:
        with pytest.raises(IntervalError, match="not one calendar month"):
            period_of(start, end)


def _config(world: Path, name: str):
    (world / f"{name}.toml").write_text(
        (world / "meterline.toml").read_text().replace(".meterline/", f".{name}/")
        .replace('state_dir = ".meterline"', f'state_dir = ".{name}"'), encoding="utf-8")
    return load_config(world / f"{name}.toml", env={})


def _raw(cfg) -> dict[str, list]:
    """Every raw table's rows without the batch stamps, and the batch ledger's content columns."""
    with connect(cfg.warehouse) as conn:
        tables = [r[0] for r in conn.fetchall(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw' ORDER BY 1")]
        out = {}
        for t in tables:
            cols = [r[0] for r in conn.fetchall(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw' "
                "AND table_name = ? AND column_name NOT IN ('_batch_id', '_extracted_at', 'batch_id', "
                "'loaded_at') ORDER BY ordinal_position", [t])]
            out[t] = sorted(map(repr, conn.fetchall(f'SELECT {", ".join(cols)} FROM raw."{t}"')))
    return out


def test_staged_extract_and_load_equal_the_cli_ingest(tmp_path: Path) -> None:
    world = make_world(tmp_path, days=3)
    days = [dt.date(2026, 10, 1), dt.date(2026, 10, 2)]
    cli, dag = _config(world, "cli"), _config(world, "dag")
    ingest_days(cli, days, lambda _m: None)

    first_load = {}
    for day in days:
        extracted = {s: extract_source(dag, s, day, lambda _m: None) for s in ("stripe", "billing", "metering")}
        assert extracted["metering"]["rows"]["metering_usage_hourly"] > 0
        assert (extract_dir(dag, day, "metering") / "extract.json").is_file()
        loaded = first_load[day] = load_extracts(dag, day, lambda _m: None)
        assert [b["source"] for b in loaded] == ["billing", "stripe", "metering"]  # metering last
        assert {b["action"] for b in loaded} == {"loaded"}
        assert not extract_dir(dag, day).exists()  # staged files removed once loaded
    assert _raw(dag) == _raw(cli)  # same rows, quarantine and batch checksums as the CLI's ingest

    # `load` again with its staged files gone (a retry after they were removed, a cleared task):
    # the night's three batches are loaded, so it succeeds, says so, and writes nothing
    before = _raw(dag)
    said: list[str] = []
    again = load_extracts(dag, days[0], said.append)
    assert [(b["source"], b["action"]) for b in again] == [
        ("billing", "already_loaded"), ("stripe", "already_loaded"), ("metering", "already_loaded")]
    assert [(b["batch_id"], b["rows"]) for b in again] == [(b["batch_id"], b["rows"]) for b in first_load[days[0]]]
    assert "already loaded" in said[-1] and _raw(dag) == before
    # ... but a night never loaded, with nothing staged, refuses as before
    with pytest.raises(StageError, match="billing source: no staged extract for 2026-10-03"):
        load_extracts(dag, dt.date(2026, 10, 3), lambda _m: None)

    # a rerun of a night: extracted again, every batch identical, nothing written
    before = _raw(dag)
    for s in ("metering", "billing", "stripe"):
        extract_source(dag, s, days[1], lambda _m: None)
    assert {b["action"] for b in load_extracts(dag, days[1], lambda _m: None)} == {"skipped_identical"}
    assert _raw(dag) == before

    # a load without its extracts refuses, naming the missing source, and loads nothing
    extract_source(dag, "billing", days[0], lambda _m: None)
    with pytest.raises(StageError, match="stripe source: no staged extract for 2026-10-01"):
        load_extracts(dag, days[0], lambda _m: None)
    assert _raw(dag) == before
    # a day outside the metering source fails its extract, and stages nothing
    with pytest.raises(IntervalError, match="outside the sources"):
        extract_source(dag, "metering", dt.date(2026, 11, 1), lambda _m: None)
    assert not extract_dir(dag, dt.date(2026, 11, 1), "metering").exists()


def test_nights_missing_is_what_the_month_close_waits_for(tmp_path: Path) -> None:
    """The close's wait: every night of the month but the last, from the batch ledger; read only."""
    world = make_world(tmp_path, days=3)  # nights 2026-10-01 .. 03 in the sources
    fresh = _config(world, "fresh")
    october = days_between(dt.date(2026, 10, 1), dt.date(2026, 10, 30))  # the 31st is the close's own
    assert nights_missing(fresh, "2026-10") == october  # no warehouse yet: every night missing ...
    assert not fresh.warehouse.path.exists()  # ... and none made by looking

    ingest_days(fresh, october[:2], lambda _m: None)
    assert nights_missing(fresh, "2026-10") == october[2:]
    # a night before the metering source's first day can never be loaded: no waiting for it
    with pytest.raises(IntervalError, match="before the metering source's first day 2026-10-01"):
        nights_missing(fresh, "2026-09")
    with pytest.raises(IntervalError, match="period must look like YYYY-MM"):
        nights_missing(fresh, "2026-13")
    # DuckDB has one writer process: while a run holds the warehouse, the check says so
    lock = fresh.warehouse.path.with_name(fresh.warehouse.path.name + ".run.lock")
    with open(lock, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(RunLockedError):
            nights_missing(fresh, "2026-10")
        fcntl.flock(held, fcntl.LOCK_UN)


def test_failure_callbacks_send_a_plain_message_with_secrets_masked(tmp_path: Path) -> None:
    """A task's last failed try says so; a run that timed out says so (Airflow skips its
    unfinished tasks, whose callbacks then never run); a run failed by a task is not said twice."""
    hook_secret, stripe_key = secrets.token_hex(8), f"sk_test_{secrets.token_hex(8)}"
    with webhook() as (base, received):
        env = airflow_env(tmp_path / "airflow", METERLINE_ALERTS_SLACK_WEBHOOK_URL=f"{base}/hook/{hook_secret}",
                          METERLINE_STRIPE_API_KEY=stripe_key)
        code = f"""
import sys, types, datetime as dt
sys.path.append({str(DAGS)!r})
from meterline_airflow import alert_run_timeout, alert_task_failure
ti = types.SimpleNamespace(dag_id="meterline_nightly", task_id="load", try_number=3,
                           run_id="scheduled__2026-10-02T00:00:00+00:00")
alert_task_failure({{"ti": ti, "exception": RuntimeError("stripe said no to {stripe_key}\\nsecond line"),
                    "data_interval_start": dt.datetime(2026, 10, 2), "data_interval_end": dt.datetime(2026, 10, 3)}})
close = types.SimpleNamespace(dag_id="meterline_month_close", dagrun_timeout=dt.timedelta(hours=36))
run = {{"dag": close, "run_id": "scheduled__2026-10-01T00:00:00+00:00",
        "ti": types.SimpleNamespace(task_id="wait_for_nights")}}
alert_run_timeout({{**run, "reason": "task_failure"}})  # the task's own callback said it
alert_run_timeout({{**run, "reason": "timed_out"}})
"""
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             env=env, cwd=tmp_path)
        assert res.returncode == 0, res.stderr[-2000:]
    assert len(received) == 2, res.stderr[-2000:]
    msg, timed_out = received[0]["body"], received[1]["body"]
    assert timed_out["blocks"][0]["text"]["text"] == "meterline: meterline_month_close run timed out"
    assert "exceeded its dagrun_timeout (1 day, 12:00:00)" in timed_out["text"]
    assert "last task started: wait_for_nights" in timed_out["text"]
    assert msg["blocks"][0]["text"]["text"] == "meterline: meterline_nightly.load failed"
    text = msg["text"]
    assert "meterline_nightly.load failed after 3 tries" in text
    assert "data interval: 2026-10-02 00:00:00 .. 2026-10-03 00:00:00" in text
    assert "RuntimeError: stripe said no to ***" in text and "second line" not in text
    assert stripe_key not in json.dumps(msg) and hook_secret not in json.dumps(msg)
    assert stripe_key not in res.stderr + res.stdout and hook_secret not in res.stderr + res.stdout


def test_airflow_connections_configure_meterline(tmp_path: Path) -> None:
    """Connections win over the environment; the password never enters the warehouse URL."""
    (tmp_path / "meterline.toml").write_text('[warehouse]\nurl = "duckdb:///wh.duckdb"\n')
    env = airflow_env(tmp_path / "airflow", METERLINE_CONFIG=str(tmp_path / "meterline.toml"),
                      METERLINE_STRIPE_API_KEY="sk_test_from_the_environment",
                      AIRFLOW_CONN_METERLINE_WAREHOUSE="postgresql://wh_user:s3cr%40t%2Fx@db.example:6543/warehouse",
                      AIRFLOW_CONN_METERLINE_STRIPE='{"conn_type": "generic", "password": "sk_test_from_airflow"}')
    code = f"""
import json, sys
sys.path.append({str(DAGS)!r})
from meterline_airflow import connection_env, meterline_config
env = connection_env()
cfg = meterline_config()
print("RESULT:" + json.dumps({{"env": env, "url": cfg.warehouse.url, "password": cfg.warehouse.password,
                              "user": cfg.warehouse.user, "stripe": cfg.stripe_api_key}}))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(next(x for x in res.stdout.splitlines() if x.startswith("RESULT:"))[7:])
    assert out["env"]["METERLINE_WAREHOUSE"] == "postgresql://wh_user@db.example:6543/warehouse"
    assert out["url"] == out["env"]["METERLINE_WAREHOUSE"]
    assert out["password"] == "s3cr@t/x" and out["user"] == "wh_user"
    assert out["stripe"] == "sk_test_from_airflow"

    # without connections: the environment, as the CLI reads it
    bare = {k: v for k, v in env.items() if not k.startswith("AIRFLOW_CONN_")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=bare, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(next(x for x in res.stdout.splitlines() if x.startswith("RESULT:"))[7:])
    assert out["env"] == {} and out["stripe"] == "sk_test_from_the_environment"
    assert out["url"] == "duckdb:///wh.duckdb"


@pytest.fixture
def airflow_helpers(monkeypatch: pytest.MonkeyPatch):
    """dags/meterline_airflow.py imported here (the standard library and pendulum: no Airflow)."""
    monkeypatch.syspath_prepend(str(DAGS))
    monkeypatch.delenv("METERLINE_END_DATE", raising=False)
    sys.modules.pop("meterline_airflow", None)
    yield importlib.import_module("meterline_airflow")
    sys.modules.pop("meterline_airflow", None)


def _pg(**kw):
    """A stand-in for an Airflow postgres connection (Connection's attributes that are read)."""
    return SimpleNamespace(**{"conn_type": "postgres", "login": None, "password": None, "host": None,
                              "port": None, "schema": None, "extra_dejson": {}, **kw})


def _as_meterline_reads_it(env: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    for name in ("PGUSER", "PGPASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return parse_db_url(env["METERLINE_WAREHOUSE"], Path("."), "METERLINE_WAREHOUSE")


@pytest.mark.parametrize(("conn", "url", "user", "host", "port", "dbname"), [
    (_pg(login="wh_user", host="db.example", port=6543, schema="warehouse"),
     "postgresql://wh_user@db.example:6543/warehouse", "wh_user", "db.example", 6543, "warehouse"),
    # a login a URL would have to percent-encode: meterline does not decode URLs, so it goes as PGUSER
    (_pg(login="etl@corp:a/b%", host="db.example", schema="warehouse"),
     "postgresql://db.example:5432/warehouse", "etl@corp:a/b%", "db.example", 5432, "warehouse"),
    (_pg(login="Ünïcode user", host="db.example", schema="wh"),
     "postgresql://db.example:5432/wh", "Ünïcode user", "db.example", 5432, "wh"),
    # an IPv6 address, bracketed or not; a database name read as it is (spaces, %, /)
    (_pg(login="u", host="::1", schema="billing db%20/x"),
     "postgresql://u@[::1]:5432/billing db%20/x", "u", "::1", 5432, "billing db%20/x"),
    (_pg(host="[fd00::5]", port=5433), "postgresql://[fd00::5]:5433/postgres", "", "fd00::5", 5433, "postgres"),
    (_pg(), "postgresql://localhost:5432/postgres", "", "localhost", 5432, "postgres"),
])
def test_warehouse_connection_to_what_meterline_reads(airflow_helpers, monkeypatch: pytest.MonkeyPatch,
                                                      conn, url, user, host, port, dbname) -> None:
    env = airflow_helpers.warehouse_env(conn)
    assert env["METERLINE_WAREHOUSE"] == url
    target = _as_meterline_reads_it(env, monkeypatch)
    assert (target.user, target.host, target.port, target.dbname) == (user, host, port, dbname)
    assert target.libpq_kwargs()["dbname"] == dbname


def test_warehouse_connection_password_and_extras(airflow_helpers, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    conn = _pg(login="wh", password="p@ss:/w?rd#", host="db.example", schema="wh", extra_dejson={
        "sslmode": "verify-full", "sslrootcert": "/etc/ssl/wh-ca.pem", "options": "-c statement_timeout=0",
        "sslcert": "", "cursor": "dictcursor"})
    with caplog.at_level(logging.WARNING, logger="meterline.airflow"):
        env = airflow_helpers.warehouse_env(conn)
    assert env == {"METERLINE_WAREHOUSE": "postgresql://wh@db.example:5432/wh", "PGPASSWORD": "p@ss:/w?rd#",
                   "PGSSLMODE": "verify-full", "PGSSLROOTCERT": "/etc/ssl/wh-ca.pem",
                   "PGOPTIONS": "-c statement_timeout=0"}  # the password never in the URL
    assert _as_meterline_reads_it(env, monkeypatch).password == "p@ss:/w?rd#"
    assert "'cursor' is not used by meterline" in caplog.text  # an extra meterline cannot pass on


@pytest.mark.parametrize(("conn", "match"), [
    (_pg(conn_type="mysql", host="db"), "a postgres connection is expected"),
    (_pg(host="db.example", schema="wh?sslmode=disable"), "database name without '\\?'"),
    (_pg(host="db.example", schema="wh#1"), "database name without"),
    (_pg(host="/var/run/postgresql", schema="wh"), "socket directory"),
    (_pg(host="user@db.example", schema="wh"), "host name or address"),
])
def test_warehouse_connection_meterline_cannot_read_is_refused(airflow_helpers, conn, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        airflow_helpers.warehouse_env(conn)


def test_stage_connections_give_each_stage_its_login(airflow_helpers, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    """meterline_warehouse_<stage> connections (deploy/postgres-roles.sql): each stage's URL and
    password, never in the URL and never PGPASSWORD (the main login's); meterline reads them
    back per stage, the main login for the rest, and refuses another database."""
    env = airflow_helpers.warehouse_env(_pg(login="wh", password="main-pw", host="db.example", schema="wh"))
    for stage in ("ingest", "ledger"):
        env.update(airflow_helpers.warehouse_env(
            _pg(login=f"etl_{stage}", password=f"{stage}-p@ss:w", host="db.example", schema="wh",
                extra_dejson={"sslmode": "disable"}),
            f"meterline_warehouse_{stage}", stage))
    assert env["METERLINE_WAREHOUSE_INGEST_URL"] == "postgresql://etl_ingest@db.example:5432/wh"
    assert env["METERLINE_WAREHOUSE_LEDGER_PASSWORD"] == "ledger-p@ss:w" and env["PGPASSWORD"] == "main-pw"
    assert "PGSSLMODE" not in env  # a stage connection sets nothing process-wide
    monkeypatch.delenv("PGUSER", raising=False)
    monkeypatch.setenv("PGPASSWORD", "main-pw")
    (tmp_path / "meterline.toml").write_text("")
    cfg = load_config(tmp_path / "meterline.toml", env=env)
    got = {s: (cfg.warehouse_for(s).user, cfg.warehouse_for(s).password) for s in ("ingest", "dbt", "ledger")}
    assert got == {"ingest": ("etl_ingest", "ingest-p@ss:w"), "dbt": ("wh", "main-pw"),
                   "ledger": ("etl_ledger", "ledger-p@ss:w")}
    assert {"main-pw", "ingest-p@ss:w", "ledger-p@ss:w"} <= set(config_secrets(cfg))
    with pytest.raises(ValueError, match="stage's login"):
        airflow_helpers.warehouse_env(_pg(login="etl@corp", host="db.example", schema="wh"),
                                      "meterline_warehouse_dbt", "dbt")
    other = {**env, "METERLINE_WAREHOUSE_DBT_URL": "postgresql://etl_dbt@db.example:5432/elsewhere"}
    with pytest.raises(ConfigError, match="must name the warehouse's database"):
        load_config(tmp_path / "meterline.toml", env=other)
