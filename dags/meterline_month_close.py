"""
### meterline_month_close

Monthly: once the nightly runs of a month are in, close that month (issue invoices, write the
accountant exports, lock the period). The stage refuses to close a month with missing nights.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task


@dag(
    schedule="@monthly",
    start_date=pendulum.datetime(2026, 10, 1, tz="UTC"),
    catchup=True,
    max_active_runs=1,
    default_args={"owner": "meterline", "retries": 2, "retry_delay": timedelta(minutes=10)},
    tags=["meterline", "close"],
    doc_md=__doc__,
)
def meterline_month_close():
    @task
    def close_period(data_interval_start=None) -> dict:
        from meterline.config import load_config
        from meterline.runner import close

        return close(load_config(), f"{data_interval_start:%Y-%m}", print)

    close_period()


meterline_month_close()
