"""What the meterline DAG files share: schedules' start, default arguments, the warehouse pool,
configuration from Airflow connections (else the environment) and the failure alert.

Light at import — the standard library and pendulum only: meterline, the stage packages and
Airflow's runtime are imported inside the functions, which run in tasks, never at parse time.
Listed in `.airflowignore`: it holds no DAG.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

import pendulum

log = logging.getLogger("meterline.airflow")

#: The first night (and the first month) the DAGs schedule; runs before it are never created.
START_DATE = pendulum.parse(os.environ.get("METERLINE_START_DATE", "2026-10-01"), tz="UTC")
#: Optional last night: a world that ends (the sample world in docker-compose) is not scheduled
#: past its data. The nightly's last run is this night's.
END_DATE = pendulum.parse(os.environ["METERLINE_END_DATE"], tz="UTC") if os.environ.get("METERLINE_END_DATE") else None
#: The month close's last run: the last month whose every night is on or before END_DATE (a
#: run's logical date is its month's first day, and Airflow schedules a run whose data interval
#: starts on or before the DAG's end_date: END_DATE itself would schedule the close of a month
#: whose later nights never come).
CLOSE_END_DATE = END_DATE.add(days=1).start_of("month").subtract(months=1) if END_DATE is not None else None

#: Every task that writes the warehouse runs in this pool, created with ONE slot
#: (`airflow pools set meterline_warehouse 1 ...`, done by the compose init job): a DuckDB file has
#: one writer, and on PostgreSQL two loads or dbt builds must not overlap either (the month
#: close's final nightly and the nightly of the same day are due at the same moment).
WAREHOUSE_POOL = "meterline_warehouse"

#: Airflow connection id -> what it provides, when it is defined (else the environment's
#: METERLINE_* / PGPASSWORD variables apply, see README "Configuration").
CONNECTIONS = {
    "meterline_warehouse": "a postgres connection: the warehouse (METERLINE_WAREHOUSE, PGPASSWORD)",
    "meterline_stripe": "its password: the Stripe API key (METERLINE_STRIPE_API_KEY)",
    "meterline_slack_webhook": "its password: the alert webhook URL (METERLINE_ALERTS_SLACK_WEBHOOK_URL)",
    "meterline_smtp": "its password: the SMTP password (METERLINE_ALERTS_SMTP_PASSWORD)",
    **{f"meterline_warehouse_{stage}": (
        f"a postgres connection: the {stage} stage's own login to the warehouse's database "
        f"(METERLINE_WAREHOUSE_{stage.upper()}_URL and _PASSWORD; deploy/postgres-roles.sql)")
       for stage in ("ingest", "dbt", "ledger", "reporting")},
}
_PASSWORD_ENV = {
    "meterline_stripe": "METERLINE_STRIPE_API_KEY",
    "meterline_slack_webhook": "METERLINE_ALERTS_SLACK_WEBHOOK_URL",
    "meterline_smtp": "METERLINE_ALERTS_SMTP_PASSWORD",
}

#: Airflow variable: "true" when the Stripe API base is localstripe (development), which the
#: push adapts to.
LOCALSTRIPE_VARIABLE = "meterline_localstripe"


def alert_task_failure(context: dict[str, Any]) -> None:
    """on_failure_callback: a plain "task failed" message on meterline's alert channels.

    Runs in the task's process after its last try failed. Never raises: a failure here is logged
    (the task has failed already, and Airflow shows it)."""
    try:
        ti = context["ti"]
        exc = context.get("exception")
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        what = f"{ti.dag_id}.{ti.task_id}"
        error = f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else str(exc or "unknown error")
        lines = error.strip().splitlines() or ["unknown error"]
        text = "\n".join([
            f"{what} failed after {ti.try_number} tr{'y' if ti.try_number == 1 else 'ies'}.",
            f"run: {ti.run_id}",
            f"data interval: {start} .. {end}",
            f"error: {lines[0][:1000]}",
            "logs: the task's log in the Airflow UI; rerun it by clearing the task (a rerun of an "
            "interval replaces what it wrote).",
        ])
        from meterline.runner import alert_failure

        sent = alert_failure(meterline_config(), f"meterline: {what} failed", text)
        for channel, rep in sent.items():
            for line in rep["failed"]:
                log.warning("failure alert on %s not delivered: %s", channel, line)
    except Exception:  # noqa: BLE001 - a callback must not raise; say why nothing was sent
        log.exception("could not send the task failure alert")


def alert_run_timeout(context: dict[str, Any]) -> None:
    """The DAGs' on_failure_callback: a "run timed out" message when a run exceeded its
    dagrun_timeout. Airflow then marks the run failed and its unfinished tasks skipped, so no
    task's failure callback says it. Any other failed run is left to its failed task's callback
    (said once). Runs in the dag-processor; never raises."""
    try:
        if context.get("reason") != "timed_out":
            return
        dag = context.get("dag")
        dag_id = getattr(dag, "dag_id", "meterline")
        ti = context.get("ti")
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        text = "\n".join([
            f"{dag_id}: the run exceeded its dagrun_timeout ({getattr(dag, 'dagrun_timeout', None)}); "
            "Airflow marked it failed and skipped its unfinished tasks.",
            f"run: {context.get('run_id')}",
            *([f"data interval: {start} .. {end}"] if start is not None else []),
            *([f"last task started: {ti.task_id}"] if ti is not None else []),
            "logs: the run's task logs in the Airflow UI; rerun it by clearing the run (a rerun of "
            "an interval replaces what it wrote).",
        ])
        from meterline.runner import alert_failure

        sent = alert_failure(meterline_config(), f"meterline: {dag_id} run timed out", text)
        for channel, rep in sent.items():
            for line in rep["failed"]:
                log.warning("timeout alert on %s not delivered: %s", channel, line)
    except Exception:  # noqa: BLE001 - a callback must not raise; say why nothing was sent
        log.exception("could not send the run timeout alert")


def _connection(conn_id: str) -> Any:
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


#: Extras of the `meterline_warehouse` connection passed on to libpq, as its environment
#: variables: meterline's PostgreSQL URL takes no query parameters (meterline.config reads host,
#: port, user, password and database only), and psycopg (meterline) and psycopg2 (dbt-postgres)
#: both read these when a connection does not name them. Other extras are ignored, with a warning.
LIBPQ_EXTRAS = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "options": "PGOPTIONS",
}
#: Characters a login may have to travel inside the URL: meterline.config reads the URL's parts
#: as they are, without percent-decoding, so a login with anything else goes as PGUSER.
_URL_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-~")


def warehouse_env(conn: Any, conn_id: str = "meterline_warehouse", stage: str | None = None) -> dict[str, str]:
    """The environment a postgres connection gives meterline: METERLINE_WAREHOUSE =
    `postgresql://[login@]host:port/database`, and libpq variables for what the URL cannot carry
    as meterline reads it: the password (PGPASSWORD: never in the URL, it would travel with it),
    a login with characters a URL would have to percent-encode (PGUSER), TLS and server options
    from the connection's extra (LIBPQ_EXTRAS). Refuses what no URL can say to meterline."""
    from urllib.parse import urlsplit

    if conn.conn_type not in ("postgres", "postgresql"):
        raise ValueError(f"connection {conn_id} has type {conn.conn_type!r}: a postgres "
                         "connection is expected (a DuckDB warehouse is a path: meterline.toml)")
    env: dict[str, str] = {}
    host = (conn.host or "localhost").strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    netloc_host = f"[{host}]" if ":" in host else host  # an IPv6 address
    database = conn.schema or "postgres"
    port = int(conn.port or 5432)
    login = conn.login or ""
    user = ""
    if login and set(login) <= _URL_SAFE:
        user = f"{login}@"
    elif login and stage is None:
        env["PGUSER"] = login
    elif login:
        raise ValueError(f"connection {conn_id}: a stage's login must be letters, digits and . _ - ~ "
                         "(it travels in the stage's URL)")
    url = f"postgresql://{user}{netloc_host}:{port}/{database}"
    # what meterline.config will read back from it, part by part (it does not percent-decode)
    parts = urlsplit(url)
    try:
        read_back = (parts.hostname, parts.port, parts.path.lstrip("/"), parts.query, parts.fragment)
    except ValueError:
        read_back = None
    if read_back != (host.lower(), port, database, "", ""):
        raise ValueError(
            f"connection {conn_id}: its host and database must be a host name or address "
            "and a database name without '?', '#' or a port-like ':' (a socket directory as host "
            "is not supported): meterline reads the warehouse as a postgresql:// URL")
    if stage is not None:  # a stage's login: its URL and password, nothing process-wide
        env[f"METERLINE_WAREHOUSE_{stage.upper()}_URL"] = url
        if conn.password:
            env[f"METERLINE_WAREHOUSE_{stage.upper()}_PASSWORD"] = conn.password
        for key in conn.extra_dejson or {}:
            log.warning("connection %s: extra %r is not used (a stage's connection gives its login "
                        "and password; TLS and options come from meterline_warehouse)", conn_id, key)
        return env
    env["METERLINE_WAREHOUSE"] = url
    if conn.password:
        env["PGPASSWORD"] = conn.password
    extra = conn.extra_dejson or {}
    for key, value in extra.items():
        if key in LIBPQ_EXTRAS and value not in (None, ""):
            env[LIBPQ_EXTRAS[key]] = str(value)
        else:
            log.warning("connection meterline_warehouse: extra %r is not used by meterline "
                        "(supported: %s)", key, ", ".join(LIBPQ_EXTRAS))
    return env


def connection_env() -> dict[str, str]:
    """The environment variables meterline's configuration takes from the Airflow connections
    that are defined (secrets are masked by Airflow when a connection is read)."""
    env: dict[str, str] = {}
    wh = _connection("meterline_warehouse")
    if wh is not None:
        env.update(warehouse_env(wh))
    for stage in ("ingest", "dbt", "ledger", "reporting"):
        conn = _connection(f"meterline_warehouse_{stage}")
        if conn is not None:
            env.update(warehouse_env(conn, f"meterline_warehouse_{stage}", stage))
    for conn_id, name in _PASSWORD_ENV.items():
        conn = _connection(conn_id)
        if conn is not None and conn.password:
            env[name] = conn.password
    return env


def meterline_config() -> Any:
    """meterline's configuration for this task: `$METERLINE_CONFIG` (or ./meterline.toml), the
    environment, and the Airflow connections above, which win over the environment. Every secret
    it holds is registered with Airflow's log masker."""
    from airflow.sdk.log import mask_secret

    from meterline.config import load_config
    from meterline.runner import config_secrets

    os.environ.update(connection_env())  # this task's process only
    cfg = load_config()
    for secret in config_secrets(cfg):
        mask_secret(secret)
    return cfg


def localstripe() -> bool:
    from airflow.sdk import Variable

    return str(Variable.get(LOCALSTRIPE_VARIABLE, default="false")).strip().lower() in ("1", "true", "yes")


DEFAULT_ARGS: dict[str, Any] = {
    "owner": "meterline",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    # a try that hangs (a source or the warehouse that stops answering) fails, is retried, and
    # its last try's failure callback alerts; tasks doing more than one stage set their own
    "execution_timeout": timedelta(hours=2),
    "on_failure_callback": alert_task_failure,
}

#: A dbt build (every model and data test) is the longest single stage.
DBT_BUILD_TIMEOUT = timedelta(hours=3)
#: A task running several stages in one try: the month close's final nightly (ingest, dbt build,
#: reconcile) and the close (two dbt builds around the ledger transaction).
MULTI_STAGE_TIMEOUT = timedelta(hours=4)

#: The month close's wait for the month's nights (a sensor in reschedule mode: it holds no
#: worker slot between pokes). A day covers a catch-up after an outage; longer means something
#: is wrong with the nightly runs, and the close fails and alerts rather than wait unseen.
NIGHTS_POKE_INTERVAL = timedelta(minutes=5)
NIGHTS_WAIT_TIMEOUT = timedelta(hours=24)

#: A run that takes longer fails (the DAG's on_failure_callback alerts). The nightly: one night's
#: stages, retries included. The month close: the wait for the nights above, then the last night,
#: the close, the push and the pack.
NIGHTLY_DAGRUN_TIMEOUT = timedelta(hours=6)
MONTH_CLOSE_DAGRUN_TIMEOUT = NIGHTS_WAIT_TIMEOUT + timedelta(hours=12)

#: Tasks that talk to outside systems (the sources, Stripe's API): retried more, with exponential
#: backoff (about 2, 4, 8, 16 min; a multiplier, as Airflow 3.3 reads it: `True` would mean 1).
BACKOFF_ARGS: dict[str, Any] = {
    "retries": 4,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
}
