"""
### meterline_nightly

One data interval (one UTC day) per run: ingest the metering store, the billing database and
Stripe into `raw.*`, build the dbt models, reconcile. Each task is one call into a tested stage
package; a rerun of a date replaces what that date wrote.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

DEFAULT_ARGS = {
    "owner": "meterline",
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
}


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2026, 10, 1, tz="UTC"),
    catchup=True,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["meterline", "nightly"],
    doc_md=__doc__,
)
def meterline_nightly():
    @task
    def ingest(data_interval_start=None) -> int:
        from meterline.config import load_config
        from meterline.runner import check_days, ingest_days

        cfg = load_config()
        day = data_interval_start.date()
        check_days(cfg, [day])
        return len(ingest_days(cfg, [day], print))

    @task
    def dbt_build() -> int:
        from meterline.config import load_config
        from meterline.dbt import build

        return build(load_config()).nodes

    @task
    def reconcile() -> int:
        from meterline.config import load_config
        from meterline.runner import reconcile_now

        rec = reconcile_now(load_config())
        if rec["check_errors"]:
            raise RuntimeError(f"reconciliation checks errored: {rec['check_errors']}")
        return rec["drift_flagged"]

    ingest() >> dbt_build() >> reconcile()


meterline_nightly()
