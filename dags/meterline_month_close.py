"""
### meterline_month_close

One billing period — one calendar month, UTC — per run, due when the month is over (the run for
October has the logical date October 1 and starts on November 1).

                                                      ┌─► push_invoices
    wait_for_nights ─► final_nightly ─► close_period ─┤
                                                      └─► finance_report

- **wait_for_nights**: a sensor (reschedule mode: no worker slot between pokes, no pool) that
  is done when every night of the month but the last is loaded in the warehouse (the close's own
  test: a metering batch per night). After an outage or at a first start the nightly DAG catches
  up one night at a time; the close waits for it instead of failing on a missing night. Pokes
  every 5 minutes, gives up after 24 hours (then fails and alerts: see why the nightly runs are
  behind). Fails at once when a missing night is before the metering source's first day (it can
  never be loaded).
- **final_nightly**: the nightly (ingest, dbt build, reconcile, alerts) for the month's last day,
  so the close never waits on the nightly run due at the same moment; that run then finds its
  batches already loaded and changes nothing. Fails without retry when a reconciliation check
  errored (a month is not closed unverified), and with retry when an alert channel failed (the
  next try sends only what was not sent).
- **close_period**: `meterline close`: issue the period's invoices, freeze its journal and
  revenue, write the revenue and accountant exports, lock it — one ledger transaction, files
  renamed into place after it commits. It refuses a month with a missing night (the task retries,
  then alerts). A rerun on a locked period re-exports it byte-identical.
- **push_invoices**: push the locked period's issued invoices to Stripe (replay-safe: outbox and
  idempotency keys; a rerun creates nothing twice). Retried with backoff; what stays unconfirmed
  fails the task and the next try resumes from the outbox. The Airflow variable
  `meterline_localstripe` = true adapts the push to localstripe (development).

- **finance_report**: finance's month-end pack for the closed month (`meterline report month`),
  under `exports/reports/YYYY-MM/`, emailed to `[reports] smtp_to` when configured. Beside the
  push: a Stripe outage never holds back the pack.

Every task is one call into `meterline.runner`; all but the sensor (which only reads) run in the
one-slot pool `meterline_warehouse`. A try times out after 2 hours (the final nightly and the
close after 4) and a run after 36 (the 24-hour wait included); a run that times out sends "run
timed out" on the alert channels.
"""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, PokeReturnValue, dag, task
from meterline_airflow import (
    BACKOFF_ARGS,
    CLOSE_END_DATE,
    DEFAULT_ARGS,
    MONTH_CLOSE_DAGRUN_TIMEOUT,
    MULTI_STAGE_TIMEOUT,
    NIGHTS_POKE_INTERVAL,
    NIGHTS_WAIT_TIMEOUT,
    START_DATE,
    WAREHOUSE_POOL,
    alert_run_timeout,
    localstripe,
    meterline_config,
)


@dag(
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
    start_date=START_DATE,
    end_date=CLOSE_END_DATE,  # the last month whose every night is scheduled (meterline_airflow)
    catchup=True,
    max_active_runs=1,
    dagrun_timeout=MONTH_CLOSE_DAGRUN_TIMEOUT,
    default_args=DEFAULT_ARGS,
    on_failure_callback=alert_run_timeout,
    tags=["meterline", "close"],
    doc_md=__doc__,
)
def meterline_month_close():
    @task.sensor(mode="reschedule", poke_interval=NIGHTS_POKE_INTERVAL.total_seconds(),
                 timeout=NIGHTS_WAIT_TIMEOUT.total_seconds())
    def wait_for_nights(data_interval_start=None, data_interval_end=None) -> PokeReturnValue:
        from airflow.sdk.exceptions import AirflowFailException

        from meterline.errors import IntervalError
        from meterline.runlock import RunLockedError
        from meterline.runner import nights_missing, period_of

        try:
            period = period_of(data_interval_start, data_interval_end)
            missing = nights_missing(meterline_config(), period)
        except IntervalError as exc:  # not a month, or a night that can never be loaded
            raise AirflowFailException(str(exc)) from exc
        except RunLockedError as exc:  # DuckDB: a meterline run holds the warehouse right now
            print(f"the warehouse is busy, looking again later: {exc}")
            return PokeReturnValue(is_done=False)
        if missing:
            print(f"{period}: waiting for {len(missing)} night(s) to be loaded: "
                  f"{', '.join(d.isoformat() for d in missing[:10])}{' ...' if len(missing) > 10 else ''}")
            return PokeReturnValue(is_done=False)
        print(f"{period}: every night but the last is loaded")
        return PokeReturnValue(is_done=True, xcom_value={"period": period, "nights_missing": 0})

    @task(pool=WAREHOUSE_POOL, multiple_outputs=False, execution_timeout=MULTI_STAGE_TIMEOUT)
    def final_nightly(data_interval_start=None, data_interval_end=None) -> dict:
        from datetime import timedelta

        from airflow.sdk.exceptions import AirflowFailException

        from meterline.runner import night_of, nightly, period_of

        period_of(data_interval_start, data_interval_end)
        last = night_of(data_interval_end - timedelta(days=1), data_interval_end)
        res = nightly(meterline_config(), [last], print)
        rec = res["reconciliation"]
        if rec["check_errors"]:  # an error is neither a pass nor a drift; a retry would not clear it
            raise AirflowFailException(f"reconciliation check(s) errored: {'; '.join(rec['check_errors'])}")
        alerts = rec.get("alerts") or {}
        failed = [f"{name}: {line}" for name, ch in (alerts.get("channels") or {}).items()
                  for line in ch.get("failed", [])]
        if alerts.get("failed") or failed:  # the next try sends only what was not sent
            raise RuntimeError(f"alert channel(s) failed: {'; '.join(failed) or 'see the log'}")
        return {"day": last.isoformat(), "batches": res["batches"], "dbt_nodes": res["dbt_nodes"],
                "as_of": rec["as_of"], "drift_flagged": rec["drift_flagged"]}

    @task(pool=WAREHOUSE_POOL, multiple_outputs=False, execution_timeout=MULTI_STAGE_TIMEOUT)
    def close_period(data_interval_start=None, data_interval_end=None) -> dict:
        from meterline.runner import close, period_of

        result = close(meterline_config(), period_of(data_interval_start, data_interval_end), print)
        return {k: v for k, v in result.items() if k != "exports"} | {"exports": len(result.get("exports", []))}

    @task(pool=WAREHOUSE_POOL, multiple_outputs=False, **BACKOFF_ARGS)
    def push_invoices(data_interval_start=None, data_interval_end=None) -> dict:
        from meterline.runner import period_of
        from meterline.runner import push_invoices as push

        return push(meterline_config(), period_of(data_interval_start, data_interval_end),
                    localstripe=localstripe(), progress=print)

    @task(pool=WAREHOUSE_POOL, multiple_outputs=False, **BACKOFF_ARGS)
    def finance_report(data_interval_start=None, data_interval_end=None) -> dict:
        from meterline.runner import finance_report as report
        from meterline.runner import period_of

        return report(meterline_config(), "month", period_of(data_interval_start, data_interval_end), print)

    closed = close_period()
    wait_for_nights() >> final_nightly() >> closed >> [push_invoices(), finance_report()]


meterline_month_close()
