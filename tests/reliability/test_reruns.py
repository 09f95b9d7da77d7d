"""Issue 10, case 2: the same night run three times, and a backfill over finished dates: identical
marts and export hashes, 0 new Stripe objects; and case 1-4's invariants on a world with planted
faults (duplicate metering rows, a negative quantity, an unknown account, late data)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import copy_world, demo_env, run_cli
from invariants import check_all, stripe_one_to_one, usage_conservation, warehouse_digest

from meterline.config import load_config
from meterline.stripe_api import make_client
from meterline.warehouse import connect

KEY = "sk_test_reliability_reruns"


def export_hashes(world: Path) -> dict[str, str]:
    root = world / "exports" / "2026-10"
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())}


@pytest.mark.slow
@pytest.mark.stripe_peer
def test_three_runs_of_a_night_and_a_backfill_change_nothing(demo_world: Path, tmp_path: Path,
                                                             localstripe_url: str) -> None:
    world = copy_world(demo_world, tmp_path)
    env = {**demo_env(), "METERLINE_CONFIG": str(world / "meterline.toml"),
           "METERLINE_STRIPE_API_KEY": KEY, "METERLINE_SOURCES_STRIPE_API_BASE": localstripe_url}

    def cli(*args: str, ok: tuple[int, ...] = (0, 1)) -> dict:
        res = run_cli(*args, "--json", cwd=world, env=env)
        assert res.returncode in ok, (args, res.returncode, res.stderr[-2000:])
        return json.loads(res.stdout)

    first = cli("push", "--period", "2026-10", "--localstripe", ok=(0,))
    assert first["created"] > 0 and first["failed"] == 0, first
    stripe = make_client(KEY, localstripe_url)

    def stripe_objects() -> dict[str, int]:
        return {kind: len(list(getattr(stripe.v1, kind).list(params={"limit": 100}).auto_paging_iter()))
                for kind in ("customers", "invoices", "invoice_items")}

    before, exports_before, objects_before = warehouse_digest(world / ".meterline" / "warehouse.duckdb"), export_hashes(world), stripe_objects()

    # the demo ran 2026-11-03 once: once more on its own, and a third time at the end of a
    # backfill over finished dates (2026-10-29 .. 31 are in the closed October)
    runs = [cli("run", "--date", "2026-11-03")]
    backfill = cli("run", "--start", "2026-10-29", "--end", "2026-11-03")
    again = cli("push", "--period", "2026-10", "--localstripe", ok=(0,))
    closed_again = cli("close", "--period", "2026-10", ok=(0,))

    assert all(r["batches"] == {"skipped_identical": 3} for r in runs), runs
    assert set(backfill["batches"]) == {"skipped_identical"}, backfill["batches"]
    assert again["created"] == 0 and again["failed"] == 0, again
    assert closed_again["action"] == "already_closed"
    after = warehouse_digest(world / ".meterline" / "warehouse.duckdb")
    changed = sorted(t for t in before.keys() | after.keys() if before.get(t) != after.get(t))
    assert changed == [], f"three runs and a backfill changed {changed}"
    assert export_hashes(world) == exports_before
    objects_after = stripe_objects()
    print(f"three runs of 2026-11-03 (the last in a backfill of 2026-10-29..11-03): {len(changed)} tables changed, "
          f"export hashes identical, Stripe objects {objects_before} -> {objects_after}")
    assert objects_after == objects_before

    cfg = load_config(world / "meterline.toml", env=env)
    with connect(cfg.warehouse, read_only=True) as conn:
        check_all(conn, world / "sources" / "metering.duckdb")
        pushed = stripe_one_to_one(conn, stripe)
        # the reruns' builds found nothing to rebuild (the work list left out above)
        assert conn.fetchone("SELECT count(*) FROM intermediate.int_metering_usage_changed_hours") == (0,)
    print(pushed)
    assert pushed.violations == [] and pushed.counted["confirmed in outbox"] == len(first["invoices"])


@pytest.mark.slow
def test_the_usage_invariant_sees_a_lost_row(demo_world: Path, tmp_path: Path) -> None:
    """The conservation check can fail: the same warehouse against a metering source with one
    more accepted row (a row the pipeline never got) is one violation of exactly its units."""
    source = tmp_path / "metering.duckdb"
    shutil.copy(demo_world / "sources" / "metering.duckdb", source)
    con = duckdb.connect(str(source))
    try:
        con.execute("""INSERT INTO main.usage_hourly SELECT hour_start, account_id, 'proj_lost', category,
                       outcome, 777, updated_at FROM main.usage_hourly WHERE outcome = 'accepted'
                       ORDER BY hour_start, account_id, category LIMIT 1""")
    finally:
        con.close()
    cfg = load_config(demo_world / "meterline.toml", env=demo_env())
    with connect(cfg.warehouse, read_only=True) as conn:
        assert usage_conservation(conn, demo_world / "sources" / "metering.duckdb").violations == []
        fig = usage_conservation(conn, source)
    assert len(fig.violations) == 1 and fig.violations[0][2] - fig.violations[0][3] == 777, fig.violations
