"""
### meterline_month_close

One billing period — one calendar month, UTC — per run, due when the month is over (the run for
October has the logical date October 1 and starts on November 1).

                                   ┌─► push_invoices
    final_nightly ─► close_period ─┤
                                   └─► finance_report

- **final_nightly**: the nightly (ingest, dbt build, reconcile, alerts) for the month's last day,
  so the close never waits on the nightly run due at the same moment; that run then finds its
  batches already loaded and changes nothing. Fails when a reconciliation check errored.
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

Every task is one call into `meterline.runner`, in the one-slot pool `meterline_warehouse`.
"""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, dag, task
from meterline_airflow import (
    BACKOFF_ARGS,
    DEFAULT_ARGS,
    END_DATE,
    START_DATE,
    WAREHOUSE_POOL,
    localstripe,
    meterline_config,
)


@dag(
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone="UTC"),
    start_date=START_DATE,
    end_date=END_DATE,
    catchup=True,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["meterline", "close"],
    doc_md=__doc__,
)
def meterline_month_close():
    @task(pool=WAREHOUSE_POOL)
    def final_nightly(data_interval_start=None, data_interval_end=None) -> dict:
        from datetime import timedelta

        from meterline.runner import night_of, nightly, period_of

        period_of(data_interval_start, data_interval_end)
        last = night_of(data_interval_end - timedelta(days=1), data_interval_end)
        res = nightly(meterline_config(), [last], print)
        rec = res["reconciliation"]
        if rec["check_errors"]:
            raise RuntimeError(f"reconciliation check(s) errored: {'; '.join(rec['check_errors'])}")
        return {"day": last.isoformat(), "batches": res["batches"], "dbt_nodes": res["dbt_nodes"],
                "as_of": rec["as_of"], "drift_flagged": rec["drift_flagged"]}

    @task(pool=WAREHOUSE_POOL)
    def close_period(data_interval_start=None, data_interval_end=None) -> dict:
        from meterline.runner import close, period_of

        result = close(meterline_config(), period_of(data_interval_start, data_interval_end), print)
        return {k: v for k, v in result.items() if k != "exports"} | {"exports": len(result.get("exports", []))}

    @task(pool=WAREHOUSE_POOL, **BACKOFF_ARGS)
    def push_invoices(data_interval_start=None, data_interval_end=None) -> dict:
        from meterline.runner import period_of
        from meterline.runner import push_invoices as push

        return push(meterline_config(), period_of(data_interval_start, data_interval_end),
                    localstripe=localstripe(), progress=print)

    @task(pool=WAREHOUSE_POOL, **BACKOFF_ARGS)
    def finance_report(data_interval_start=None, data_interval_end=None) -> dict:
        from meterline.runner import finance_report as report
        from meterline.runner import period_of

        return report(meterline_config(), "month", period_of(data_interval_start, data_interval_end), print)

    closed = close_period()
    final_nightly() >> closed >> [push_invoices(), finance_report()]


meterline_month_close()
