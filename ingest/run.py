"""One night's ingest: extract the three sources for a data interval and load each as a batch.

Every source is probed before anything is loaded, so an unreachable source fails the run,
naming it, with nothing written. Metering and billing then stream chunk by chunk into their
load transaction: a source that fails half-way rolls its batch back (it loads nothing) and
the run fails naming it. Metering loads last: its batch marks the interval as ingested
(dbt's as_of), so a night whose metering did not load is not treated as done.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ingest.load import BatchResult, load_batch
from ingest.sql_sources import extract_billing, extract_metering, probe
from ingest.stripe import configured_resources, extract_stripe_interval, reader_from_config
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
    probe(cfg, "billing")
    probe(cfg, "metering")
    sources = cfg.values["sources"]
    stripe = extract_stripe_interval(
        reader_from_config(stripe_client, stripe_api_key, sources), start, end,
        configured_resources(sources),
    )
    options = {
        "max_quarantine_share": cfg.get("pipeline", "quarantine_max_share"),
        "chunk_rows": cfg.get("pipeline", "chunk_rows"),
    }
    return [
        load_batch(conn, "billing", start, end, extract_billing(cfg, day), extracted_at, **options),
        load_batch(conn, "stripe", start, end, stripe, extracted_at, **options),
        load_batch(conn, "metering", start, end, extract_metering(cfg, day), extracted_at, **options),
    ]
