"""Issue 10, case 1: the loader killed (SIGKILL, no clean-up of any kind) at seeded points, then
rerun: 0 rows lost or duplicated. Each kill point is the N-th warehouse statement of an ingest of
two nights (schema set-up, batch ledger, raw appends, quarantine, commits), N drawn from a seed;
after the rerun every raw table holds exactly the rows of one clean load, and the batch ledger one
loaded batch per source and night."""

from __future__ import annotations

import datetime as dt
import random
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from conftest import demo_env

from meterline.config import load_config
from meterline.runner import days_between, ingest_days

SEED = 20261121
KILL_POINTS = 22
NIGHTS = ("2026-10-01", "2026-10-02")
# per-load stamps, not content: they differ between any two loads of the same data
STAMPS = {"_batch_id", "_extracted_at", "batch_id", "loaded_at", "extracted_at", "quarantined_at",
          "checksum"}

DRIVER = textwrap.dedent("""
    import datetime as dt, os, signal, sys
    from meterline import warehouse
    from meterline.config import load_config
    from meterline.runner import days_between, ingest_days

    kill_at, calls = int(sys.argv[1]), 0

    def counted(name):
        original = getattr(warehouse.Connection, name)

        def wrapper(self, *args, **kwargs):
            global calls
            calls += 1
            if calls == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would: nothing runs after
            return original(self, *args, **kwargs)

        setattr(warehouse.Connection, name, wrapper)

    for name in ("execute", "insert_arrow", "ensure_table", "ensure_schema"):
        counted(name)
    ingest_days(load_config(), days_between(dt.date.fromisoformat(sys.argv[2]),
                                            dt.date.fromisoformat(sys.argv[3])), lambda m: None)
    print(f"STATEMENTS {calls}")
""")


def new_world(demo_world: Path, where: Path) -> Path:
    """The demo's sources (read-only, linked) and config, with an empty warehouse."""
    where.mkdir(parents=True)
    (where / "sources").symlink_to(demo_world / "sources")
    shutil.copy(demo_world / "meterline.toml", where / "meterline.toml")
    return where


def drive(world: Path, kill_at: int) -> subprocess.CompletedProcess:
    env = {**demo_env(), "METERLINE_CONFIG": str(world / "meterline.toml")}
    return subprocess.run([sys.executable, "-c", DRIVER, str(kill_at), *NIGHTS], cwd=world, env=env,
                          capture_output=True, text=True, timeout=600)


def raw_content(world: Path) -> dict[str, Counter]:
    """Every raw table as a multiset of its rows, load stamps left out; and the loaded batches."""
    con = duckdb.connect(str(world / ".meterline" / "warehouse.duckdb"), read_only=True)
    try:
        out: dict[str, Counter] = {}
        for (table,) in con.execute("SELECT table_name FROM information_schema.tables "
                                    "WHERE table_schema = 'raw' ORDER BY 1").fetchall():
            cols = [c for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw' "
                "AND table_name = ? ORDER BY ordinal_position", [table]).fetchall() if c not in STAMPS]
            rows = con.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in cols)} FROM raw."{table}"').fetchall()
            out[table] = Counter(rows)
        out["loaded batches"] = Counter(con.execute(
            "SELECT source, interval_start, interval_end FROM raw.batch_ledger WHERE status = 'loaded'").fetchall())
        return out
    finally:
        con.close()


@pytest.mark.slow
def test_loader_killed_at_seeded_points_then_rerun_loses_and_duplicates_nothing(
        demo_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean = new_world(demo_world, tmp_path / "clean")
    counted = drive(clean, kill_at=0)
    assert counted.returncode == 0, counted.stderr[-2000:]
    statements = int(counted.stdout.split("STATEMENTS")[1])
    expected = raw_content(clean)
    assert sum(len(v) for v in expected.values()) > 1000 and len(expected["loaded batches"]) == 6

    points = sorted(random.Random(SEED).sample(range(1, statements + 1), min(KILL_POINTS, statements)))
    lost = duplicated = 0
    for n in points:
        world = new_world(demo_world, tmp_path / f"kill_{n}")
        killed = drive(world, kill_at=n)
        assert killed.returncode == -9, (n, killed.returncode, killed.stderr[-1000:])  # really killed
        monkeypatch.setenv("METERLINE_CONFIG", str(world / "meterline.toml"))
        monkeypatch.chdir(world)
        nights = [dt.date.fromisoformat(d) for d in NIGHTS]
        ingest_days(load_config(), days_between(*nights), lambda m: None)  # the rerun, in this process
        got = raw_content(world)
        for table in expected.keys() | got.keys():
            lost += sum((expected.get(table, Counter()) - got.get(table, Counter())).values())
            duplicated += sum((got.get(table, Counter()) - expected.get(table, Counter())).values())
        assert got == expected, f"kill at statement {n} of {statements}: the rerun differs"
        shutil.rmtree(world)
    print(f"loader killed at {len(points)} points of {statements} statements, then rerun: "
          f"{lost} rows lost, {duplicated} duplicated")
    assert len(points) >= 20 and lost == 0 and duplicated == 0
