"""Issue 10, case 3: two runs of the same interval at once. One completes, the other refuses
(or waits): never two writers interleaving batches, builds and invoices. meterline/runlock.py."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pytest
from conftest import ROOT, copy_world, demo_env
from invariants import check_all

from meterline.config import load_config, parse_db_url
from meterline.runlock import RunLockedError, exclusive
from meterline.warehouse import connect

REFUSED = "another meterline run holds the warehouse"


def try_lock_elsewhere(url: str, base: Path, wait: float = 0.0) -> dict:
    """Take the run lock for `url` in another process: what happened there."""
    code = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from meterline.config import parse_db_url
        from meterline.runlock import RunLockedError, exclusive
        target = parse_db_url({url!r}, Path({str(base)!r}), "warehouse")
        try:
            with exclusive(target, "close", wait_seconds={wait}):
                print(json.dumps({{"got": True}}))
        except RunLockedError as exc:
            print(json.dumps({{"got": False, "error": str(exc), "code": exc.exit_code}}))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout)


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    return request.getfixturevalue("pg_url")


def test_a_second_run_is_refused_while_the_first_holds_the_warehouse(warehouse_url: str, tmp_path: Path) -> None:
    target = parse_db_url(warehouse_url, tmp_path, "warehouse")
    with exclusive(target, "nightly"):
        with exclusive(target, "dbt build"):  # re-entrant within one process
            pass
        other = try_lock_elsewhere(warehouse_url, tmp_path)
        assert other["got"] is False and other["code"] == 2, other
        assert REFUSED in other["error"] and "nightly" in other["error"], other  # says who holds it
    # released: the next run gets it
    assert try_lock_elsewhere(warehouse_url, tmp_path) == {"got": True}


def test_a_waiting_run_gets_the_warehouse_when_the_first_is_done(warehouse_url: str, tmp_path: Path) -> None:
    target = parse_db_url(warehouse_url, tmp_path, "warehouse")
    held = threading.Event()

    def first() -> None:
        with exclusive(target, "nightly"):
            held.set()
            time.sleep(2.0)

    t = threading.Thread(target=first)
    t.start()
    held.wait(10)
    try:
        assert try_lock_elsewhere(warehouse_url, tmp_path, wait=60) == {"got": True}
    finally:
        t.join()


def test_a_killed_holder_leaves_no_lock_behind(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    code = textwrap.dedent(f"""
        import os, time
        from pathlib import Path
        from meterline.config import parse_db_url
        from meterline.runlock import exclusive
        with exclusive(parse_db_url({url!r}, Path({str(tmp_path)!r}), "w"), "nightly"):
            print("held", flush=True)
            time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        assert try_lock_elsewhere(url, tmp_path)["got"] is False
    finally:
        proc.kill()
        proc.wait(30)
    assert try_lock_elsewhere(url, tmp_path) == {"got": True}


def test_in_process_refusal_is_a_run_locked_error(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    code = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from meterline.config import parse_db_url
        from meterline.runlock import exclusive
        with exclusive(parse_db_url({url!r}, Path({str(tmp_path)!r}), "w"), "nightly"):
            print("held", flush=True)
            time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=REFUSED), exclusive(parse_db_url(url, tmp_path, "w"), "close"):
            pytest.fail("the lock was granted twice")
    finally:
        proc.kill()
        proc.wait(30)


@pytest.mark.slow
def test_two_nightlies_of_the_same_night_at_once(demo_world: Path, tmp_path: Path) -> None:
    """Two `meterline run --date D` started together on one warehouse: one completes, the other
    refuses with a clear error and exit 2; the ledger still has one invoice per account and
    period, and one loaded batch per source and night."""
    world = copy_world(demo_world, tmp_path)
    env = {**demo_env(), "METERLINE_CONFIG": str(world / "meterline.toml")}
    procs = [subprocess.Popen([sys.executable, "-m", "meterline.cli", "run", "--date", "2026-11-03"],
                              cwd=world, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [(p.wait(900), *p.communicate()) for p in procs]
    codes = sorted(rc for rc, _, _ in outs)
    refused = [err for rc, _, err in outs if rc == 2]
    print(f"concurrent nightlies: exit codes {codes}")
    assert len(refused) == 1 and REFUSED in refused[0], outs
    assert codes[0] in (0, 1), outs  # the other completed (1: it found the planted drift)

    con = duckdb.connect(str(world / ".meterline" / "warehouse.duckdb"), read_only=True)
    try:
        twice = con.execute(
            "SELECT account_id, period, count(*) FROM ledger.issued_invoices WHERE voided_at IS NULL "
            "GROUP BY ALL HAVING count(*) > 1").fetchall()
        batches = con.execute(
            "SELECT source, interval_start, count(*) FROM raw.batch_ledger WHERE status = 'loaded' "
            "GROUP BY ALL HAVING count(*) > 1").fetchall()
        drafts = con.execute(
            "SELECT account_id, period, count(*) FROM marts.fct_invoices GROUP BY ALL "
            "HAVING count(*) > 1").fetchall()
    finally:
        con.close()
    assert twice == [] and batches == [] and drafts == [], (twice, batches, drafts)
    cfg = load_config(world / "meterline.toml", env=env)
    with connect(cfg.warehouse, read_only=True) as conn:
        check_all(conn, world / "sources" / "metering.duckdb")
