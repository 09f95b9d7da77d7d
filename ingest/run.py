"""One night's ingest: extract the three sources for a data interval, then load each as a batch.

All three extracts are read completely before anything is loaded, so an unreachable or
half-read source loads nothing and the run fails naming the source.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ingest.load import BatchResult, load_batch
from ingest.sql_sources import extract_billing, extract_metering
from ingest.stripe import extract_stripe
from meterline.config import Config
from meterline.warehouse import Connection


def ingest_day(
    cfg: Config,
    conn: Connection,
    day: dt.date,
    stripe_client: Any,
    extracted_at: dt.datetime,
    stripe_api_key: str = "",
) -> list[BatchResult]:
    start = dt.datetime.combine(day, dt.time())
    end = start + dt.timedelta(days=1)
    extracts = {
        "billing": extract_billing(cfg, day),
        "stripe": extract_stripe(
            stripe_client, day, api_key=stripe_api_key,
            server_filters=cfg.get("sources", "stripe_server_filters"),
        ),
        # metering last: its batch marks the interval as ingested (dbt's as_of)
        "metering": extract_metering(cfg, day),
    }
    return [
        load_batch(conn, source, start, end, tables, extracted_at)
        for source, tables in extracts.items()
    ]
