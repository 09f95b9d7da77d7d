"""The rating a user would otherwise write: straightforward pandas over the same sources.

From the metering Parquet files and the billing database (price books, subscriptions,
accounts), the usage charge of every account, data category and calendar-month billing period:

1. read every usage row written before `as_of` (the end of the last loaded night);
2. keep the latest version of each natural key (hour, account, project, category, outcome);
3. keep `accepted` usage and sum it per account, category and period;
4. price it with the plan of the subscription active at the period start and the price book
   rows in force then: graduated tiers over the quantity beyond the included volume
   (docs/sources.md), exact (`Decimal` unit prices, integer units, no float on the money path);
5. round each line once, half to even, to the currency's minor unit.

That is meterline's rating (`int_usage_rated` → `fct_billable_usage`) for a world without
proration, spike protection, spend caps or reserved volume — which the bench world is
(`bench/world.py`); the harness checks that both give the same amount on every row.

Written the way the pandas documentation suggests (vectorised reads, `sort_values` +
`drop_duplicates`, `groupby`, `merge`), not tuned: it is the baseline, not a competitor.
"""

from __future__ import annotations

import datetime as dt
import glob
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

KEY = ["hour_start", "account_id", "project_id", "category", "outcome"]
COLUMNS = [*KEY, "quantity", "updated_at"]
# ISO 4217 minor-unit exponents: the dbt seed `currencies` is the source of truth
SEED_CURRENCIES = Path(__file__).resolve().parent.parent / "dbt_project" / "seeds" / "currencies.csv"


def read_billing(billing_path: Path) -> dict[str, pd.DataFrame]:
    """The billing tables rating needs, as pandas frames (unit prices stay `Decimal`)."""
    con = duckdb.connect(str(billing_path), read_only=True)
    try:
        out = {
            "accounts": con.sql("SELECT account_id, currency FROM accounts").df(),
            "subscriptions": con.sql(
                "SELECT account_id, plan_id, started_at, ended_at FROM subscriptions").df(),
            # DECIMAL(38, 12) as text, parsed into Decimal: exact (`.df()` would give floats)
            "prices": con.sql(
                "SELECT plan_id, category, effective_from, effective_to, included_quantity, "
                "tier_start, tier_end, CAST(unit_price_decimal AS VARCHAR) AS unit_price "
                "FROM price_books").df(),
        }
    finally:
        con.close()
    out["prices"]["unit_price_decimal"] = out["prices"]["unit_price"].map(Decimal)
    return out


def rate(usage_glob: str, billing_path: Path, as_of: dt.datetime) -> pd.DataFrame:
    """One row per account, category and period: quantity, amount_decimal, amount_minor."""
    files = sorted(glob.glob(usage_glob))
    usage = pd.concat([pd.read_parquet(f, columns=COLUMNS) for f in files], ignore_index=True)
    usage = usage[usage["updated_at"] < as_of]
    usage = usage.sort_values("updated_at", kind="stable").drop_duplicates(KEY, keep="last")
    usage = usage[usage["outcome"] == "accepted"]
    usage["period_start"] = usage["hour_start"].dt.to_period("M").dt.to_timestamp()
    totals = usage.groupby(["account_id", "category", "period_start"], as_index=False)[
        "quantity"].sum()
    del usage

    billing = read_billing(billing_path)
    subs = billing["subscriptions"]
    rated = totals.merge(subs, on="account_id")
    rated = rated[(rated["started_at"] <= rated["period_start"])
                  & (rated["ended_at"].isna() | (rated["period_start"] < rated["ended_at"]))]
    rated = rated.merge(billing["accounts"], on="account_id")
    prices = billing["prices"]
    prices["effective_from"] = pd.to_datetime(prices["effective_from"])
    prices["effective_to"] = pd.to_datetime(prices["effective_to"])
    tiers = rated.merge(prices, on=["plan_id", "category"])
    tiers = tiers[(tiers["effective_from"] <= tiers["period_start"])
                  & (tiers["effective_to"].isna()
                     | (tiers["period_start"] < tiers["effective_to"]))]
    billable = (tiers["quantity"] - tiers["included_quantity"]).clip(lower=0).to_numpy("int64")
    tier_end = tiers["tier_end"].to_numpy("float64", na_value=np.nan)
    upper = np.where(np.isnan(tier_end), billable,
                     np.minimum(billable, np.nan_to_num(tier_end, nan=0).astype("int64")))
    units = np.maximum(upper - tiers["tier_start"].to_numpy("int64"), 0)
    # units x unit price, exact: Python int times Decimal (one value per tier row, not per usage row)
    tiers = tiers.assign(tier_amount=[Decimal(int(u)) * p for u, p in
                                      zip(units, tiers["unit_price_decimal"], strict=True)])
    out = tiers.groupby(["account_id", "category", "period_start", "currency"], as_index=False).agg(
        quantity=("quantity", "first"),
        amount_decimal=("tier_amount", lambda s: sum(s, Decimal(0))),
    )
    exponents = pd.read_csv(SEED_CURRENCIES, dtype={"minor_unit_exponent": "int64"})
    out = out.merge(exponents[["currency", "minor_unit_exponent"]], on="currency", how="left")
    out["amount_minor"] = [
        int((a * (Decimal(10) ** int(e))).to_integral_value(rounding=ROUND_HALF_EVEN))
        for a, e in zip(out["amount_decimal"], out["minor_unit_exponent"], strict=True)
    ]
    out["period"] = out["period_start"].dt.strftime("%Y-%m")
    return out[["account_id", "category", "period", "currency", "quantity", "amount_decimal",
                "amount_minor"]].sort_values(["account_id", "category", "period"],
                                             ignore_index=True)
