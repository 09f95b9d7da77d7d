"""
### meterline_nightly

One data interval — one UTC day, `[D, D+1)` — per run. Scheduled runs and backfills have the
logical date D; a manual run (`airflow dags test meterline_nightly D`) processes the last complete
day before D, as Airflow infers a manual run's data interval.

    extract_metering ┐                                  ┌─► alert
    extract_billing  ├─► load ─► dbt_build ─► reconcile ┤
    extract_stripe   ┘                                  └─► finance_report

- **extract_*** (in parallel, retried with exponential backoff): one source's interval, staged as
  Arrow files under `pipeline.state_dir/extracts/D/`; the warehouse is not touched.
- **load**: the three staged extracts into `raw.*`, one batch and transaction per source,
  metering last; a batch identical to the interval's loaded one is skipped. Nothing staged while
  the night's three batches are loaded (a retry after the staged files were removed, a cleared
  `load`) succeeds changing nothing (`already_loaded`).
- **dbt_build**: every model and data test (dbt's own runner, in-process: see DECISIONLOG.md).
- **reconcile**: the Great Expectations checkpoint over the reconciliation marts, recorded.
- **alert**: engineers' alerts for that reconciliation; fails (not retried) when a check
  errored, and (retried) when an alert channel failed.

- **finance_report**: finance's daily flash for the night (`meterline report daily`), written
  under `exports/reports/D/` and emailed to `[reports] smtp_to` when configured; skipped for a
  night before the first billing period. It follows `reconcile`, beside `alert`, so an alert
  channel that is down never holds back finance's report (nor the report the alerts).

Every task is one call into `meterline.runner`; a rerun of a date replaces what that date wrote (the warehouse ends
identical). Tasks that write the warehouse share the one-slot pool `meterline_warehouse`. A task
that fails for good sends a "task failed" message on the alert channels. A try times out after
2 hours (the dbt build after 3) and a run after 6: a run that times out sends "run timed out".
"""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, dag, task
from meterline_airflow import (
    BACKOFF_ARGS,
    DBT_BUILD_TIMEOUT,
    DEFAULT_ARGS,
    END_DATE,
    NIGHTLY_DAGRUN_TIMEOUT,
    START_DATE,
    WAREHOUSE_POOL,
    alert_run_timeout,
    meterline_config,
)


@dag(
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START_DATE,
    end_date=END_DATE,
    catchup=True,
    max_active_runs=1,
    dagrun_timeout=NIGHTLY_DAGRUN_TIMEOUT,
    default_args=DEFAULT_ARGS,
    on_failure_callback=alert_run_timeout,
    tags=["meterline", "nightly"],
    doc_md=__doc__,
)
def meterline_nightly():
    # multiple_outputs=False: a task returning a dict keeps it as its one XCom (Airflow would
    # infer multiple_outputs from `-> dict` and store every key again as an XCom of its own)
    @task(multiple_outputs=False, **BACKOFF_ARGS)
    def extract(source: str, data_interval_start=None, data_interval_end=None) -> dict:
        from meterline.runner import extract_source, night_of

        return extract_source(meterline_config(), source, night_of(data_interval_start, data_interval_end),
                              print)

    @task(pool=WAREHOUSE_POOL)
    def load(data_interval_start=None, data_interval_end=None) -> list[dict]:
        from meterline.runner import load_extracts, night_of

        return load_extracts(meterline_config(), night_of(data_interval_start, data_interval_end), print)

    @task(pool=WAREHOUSE_POOL, multiple_outputs=False, execution_timeout=DBT_BUILD_TIMEOUT)
    def dbt_build() -> dict:
        from meterline.runner import build_models

        return build_models(meterline_config(), print)

    @task(pool=WAREHOUSE_POOL, multiple_outputs=False)
    def reconcile() -> dict:
        from meterline.runner import reconcile_now

        rec = reconcile_now(meterline_config(), alert=False)
        return {k: rec[k] for k in ("as_of", "checks", "check_errors", "drift_flagged", "quarantined")}

    @task(pool=WAREHOUSE_POOL, multiple_outputs=False)
    def alert(rec: dict) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from meterline.runner import alert_reconciliation

        out = alert_reconciliation(meterline_config(), rec["as_of"])
        if out["check_errors"]:  # an error is neither a pass nor a drift; a retry would not clear it
            raise AirflowFailException(f"reconciliation check(s) errored: {'; '.join(out['check_errors'])}")
        if out["alerts_failed"]:  # the next try sends only what was not sent
            raise RuntimeError(f"alert channel(s) failed: {'; '.join(out['alerts_failed'])}")
        return out

    @task(pool=WAREHOUSE_POOL, multiple_outputs=False, **BACKOFF_ARGS)
    def finance_report(rec: dict, data_interval_start=None, data_interval_end=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from meterline.errors import NoBillingPeriodError
        from meterline.runner import finance_report as report
        from meterline.runner import night_of

        day = night_of(data_interval_start, data_interval_end)
        try:
            return report(meterline_config(), "daily", day.isoformat(), print)
        except NoBillingPeriodError as exc:
            raise AirflowSkipException(f"no daily flash for {day}: {exc}") from exc

    extracts = [extract.override(task_id=f"extract_{source}")(source)
                for source in ("metering", "billing", "stripe")]
    loaded, built, rec = load(), dbt_build(), reconcile()
    extracts >> loaded >> built >> rec
    alert(rec)
    finance_report(rec)


meterline_nightly()
