"""The direct path (DuckDB warehouse + Parquet / CSV files) equals the streaming path.

With a DuckDB warehouse and a file source, `load_batch` runs the windowed `read_parquet` /
`read_csv` scan, the contract checks, the checksum and the insert as SQL inside the warehouse
connection. Every other combination streams Arrow chunks through `ingest.chunks`. Both must
give the same raw rows, quarantine rows, ledger and `BatchResult`, and recognise each other's
batches as identical on a rerun.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from ingest import load as load_mod
from ingest.chunks import ChunkChecker
from ingest.load import BatchResult, ensure_raw, load_batch
from ingest.sql_sources import extract_metering
from meterline.config import Config, load_config
from meterline.errors import SourceError
from meterline.warehouse import Connection, connect

DAY = dt.date(2026, 10, 10)
START = dt.datetime.combine(DAY, dt.time())
END = START + dt.timedelta(days=1)
T0 = dt.datetime(2026, 10, 11, 1, 0)
T1 = dt.datetime(2026, 10, 11, 2, 0)
TABLES = ["metering_usage_hourly", "quarantine", "batch_ledger"]

H = "2026-10-09 05:00:00"
U = "2026-10-10 03:00:00"
# (hour_start, account_id, project_id, category, outcome, quantity, updated_at) as text
ROWS = [
    *[(f"2026-10-09 {h:02d}:00:00", f"acct_{a}", "p1", "error", "accepted", str(10 * h + a), U)
      for h in range(24) for a in range(5)],
    (H, "acct_9", "p1", "error", "accepted", "-3", U),            # negative_quantity
    (H, "", "p1", "error", "accepted", "1", U),                   # missing_account
    (H, None, "p1", "span", "accepted", "1", U),                  # missing_account (NULL)
    (H, "acct_8", "p1", "not_a_category", "accepted", "1", U),    # unknown_category
    (None, "acct_7", "p1", "error", "accepted", "1", U),          # unparsable_timestamp (NULL)
    (H, "acct_6", "p1", "error", "accepted", "5", U),             # duplicate_key: kept
    (H, "acct_6", "p1", "error", "accepted", "6", U),             # duplicate_key: extra copy
    (H, "acct_5", "p1", "error", "accepted", None, U),            # NULL quantity: loaded
    ("2026-09-01 00:00:00", "acct_1", "p1", "error", "accepted", "1", U),  # outside window
    (H, "acct_1", "p1", "error", "accepted", "1", "2026-10-12 00:00:00"),  # written later
]
CSV_ONLY = [
    ("not a time", "acct_4", "p1", "error", "accepted", "1", U),  # unparsable_timestamp (text)
    # no readable update time: the night of its hour (2026-10-09) pulls it, not this one
    (H, "acct_3", "p1", "replay", "accepted", "2", "2026-10-10 7pm"),
]


def write_files(out: Path, fmt: str, rows: list[tuple], files: int = 2) -> str:
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("CREATE TABLE src (hour_start VARCHAR, account_id VARCHAR, project_id VARCHAR, "
                "category VARCHAR, outcome VARCHAR, quantity VARCHAR, updated_at VARCHAR)")
    con.executemany("INSERT INTO src VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    typed = ("SELECT CAST(hour_start AS TIMESTAMP) AS hour_start, account_id, project_id, category, "
             "outcome, CAST(quantity AS BIGINT) AS quantity, CAST(updated_at AS TIMESTAMP) AS updated_at "
             "FROM src")
    body = typed if fmt == "parquet" else "SELECT * FROM src"
    opts = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
    for i in range(files):
        con.execute(f"COPY ({body} WHERE hash(account_id, hour_start) % {files} = {i}) "
                    f"TO '{out}/part-{i}.{fmt}' ({opts})")
    con.close()
    return f"{out}/*.{fmt}"


def make_config(base: Path, glob: str, fmt: str, name: str) -> Config:
    base.mkdir(parents=True, exist_ok=True)
    (base / "meterline.toml").write_text(
        f'[warehouse]\nurl = "duckdb:///{base}/{name}.duckdb"\n'
        f'[sources]\nmetering_path = "{glob}"\nmetering_format = "{fmt}"\n'
        "[pipeline]\nchunk_rows = 7\n")
    return load_config(base / "meterline.toml", env={})


def streamed(cfg: Config) -> dict[str, Iterator]:
    """The same extract, hidden behind a plain generator: the streaming path."""
    return {k: (b for b in v) for k, v in extract_metering(cfg, DAY).items()}


def load(conn: Connection, tables: dict, at: dt.datetime = T0) -> BatchResult:
    return load_batch(conn, "metering", START, END, tables, at, chunk_rows=7)


def snapshot(conn: Connection) -> dict[str, list[tuple]]:
    return {t: sorted(conn.fetchall(f'SELECT * FROM raw."{t}"'), key=repr) for t in TABLES}


@pytest.fixture
def no_streaming(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if a chunk goes through the in-process checker (the direct path must not)."""
    def refuse(*_: object) -> None:
        raise AssertionError("the direct path streamed a chunk through Python")

    monkeypatch.setattr(ChunkChecker, "check", refuse)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_direct_equals_streaming(tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = ROWS + (CSV_ONLY if fmt == "csv" else [])
    glob = write_files(tmp_path / "usage", fmt, rows)
    cfg_s = make_config(tmp_path / "s", glob, fmt, "stream")
    with connect(cfg_s.warehouse) as conn:
        ensure_raw(conn)
        want = load(conn, streamed(cfg_s))
        want_snap = snapshot(conn)
    cfg_d = make_config(tmp_path / "d", glob, fmt, "direct")
    with monkeypatch.context() as m:
        m.setattr(ChunkChecker, "check", lambda *_: pytest.fail("streamed a chunk"))
        with connect(cfg_d.warehouse) as conn:
            ensure_raw(conn)
            got = load(conn, extract_metering(cfg_d, DAY))
            got_snap = snapshot(conn)
    assert got == want
    assert got_snap == want_snap
    expected = {"duplicate_key": 1, "missing_account": 2, "negative_quantity": 1,
                "unknown_category": 1, "unparsable_timestamp": 1 + (1 if fmt == "csv" else 0)}
    assert want.quarantined == expected
    assert want.row_counts == {"metering_usage_hourly": 122}
    assert len(want_snap["quarantine"]) == sum(expected.values())


@pytest.mark.parametrize("first_direct", [True, False])
def test_rerun_through_the_other_path_is_skipped(tmp_path: Path, first_direct: bool) -> None:
    glob = write_files(tmp_path / "usage", "parquet", ROWS)
    cfg = make_config(tmp_path, glob, "parquet", "wh")
    direct, stream = extract_metering(cfg, DAY), streamed(cfg)
    with connect(cfg.warehouse) as conn:
        ensure_raw(conn)
        first = load(conn, direct if first_direct else stream)
        before = snapshot(conn)
        again = load(conn, extract_metering(cfg, DAY) if not first_direct else streamed(cfg), T1)
        assert again.action == "skipped_identical"
        assert again.checksum == first.checksum and again.batch_id == first.batch_id
        assert again.quarantined == first.quarantined
        assert snapshot(conn) == before
        # and a rerun through the same path is skipped too
        third = load(conn, extract_metering(cfg, DAY), T1)
        assert dataclasses.replace(third, action="loaded") == dataclasses.replace(
            again, action="loaded")


def test_changed_files_replace_in_one_transaction(tmp_path: Path, no_streaming: None) -> None:
    glob = write_files(tmp_path / "usage", "parquet", ROWS)
    cfg = make_config(tmp_path, glob, "parquet", "wh")
    with connect(cfg.warehouse) as conn:
        ensure_raw(conn)
        first = load(conn, extract_metering(cfg, DAY))
        write_files(tmp_path / "usage", "parquet", ROWS[:50])
        second = load(conn, extract_metering(cfg, DAY), T1)
        assert (first.action, second.action) == ("loaded", "replaced")
        assert second.row_counts == {"metering_usage_hourly": 50}
        assert conn.fetchall("SELECT batch_id, row_count FROM raw.batch_ledger") == [
            (second.batch_id, 50)]
        assert conn.fetchone("SELECT count(DISTINCT _batch_id), count(*) FROM "
                             "raw.metering_usage_hourly") == (1, 50)


def test_crash_mid_load_leaves_nothing(tmp_path: Path, no_streaming: None,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    glob = write_files(tmp_path / "usage", "parquet", ROWS)
    cfg = make_config(tmp_path, glob, "parquet", "wh")
    with connect(cfg.warehouse) as conn:
        ensure_raw(conn)
        monkeypatch.setattr(load_mod, "_quarantine_duplicates",
                            lambda *_: (_ for _ in ()).throw(KeyboardInterrupt("killed")))
        with pytest.raises(KeyboardInterrupt):
            load(conn, extract_metering(cfg, DAY))
        assert all(rows == [] for rows in snapshot(conn).values())
        monkeypatch.undo()
        first = load(conn, extract_metering(cfg, DAY))
        before = snapshot(conn)
        # a crash while replacing keeps the previous batch whole
        write_files(tmp_path / "usage", "parquet", ROWS[:50])
        monkeypatch.setattr(load_mod, "_quarantine_duplicates",
                            lambda *_: (_ for _ in ()).throw(KeyboardInterrupt("killed")))
        with pytest.raises(KeyboardInterrupt):
            load(conn, extract_metering(cfg, DAY), T1)
        assert snapshot(conn) == before and first.action == "loaded"


def test_value_that_does_not_fit_fails_like_the_streaming_path(tmp_path: Path) -> None:
    rows = [*ROWS[:10], (H, "acct_2", "p1", "error", "accepted", "lots", U)]
    glob = write_files(tmp_path / "usage", "csv", rows, files=1)
    cfg = make_config(tmp_path, glob, "csv", "wh")
    with connect(cfg.warehouse) as conn:
        ensure_raw(conn)
        with pytest.raises(SourceError, match="metering_usage_hourly: a value does not fit") as direct:
            load(conn, extract_metering(cfg, DAY))
        with pytest.raises(SourceError) as stream:
            load(conn, streamed(cfg))
        assert str(direct.value) == str(stream.value)
        assert all(rows == [] for rows in snapshot(conn).values())


def test_missing_files_name_the_source(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, str(tmp_path / "nowhere" / "*.parquet"), "parquet", "wh")
    with connect(cfg.warehouse) as conn:
        ensure_raw(conn)
        with pytest.raises(SourceError, match="^metering source: cannot read"):
            load(conn, extract_metering(cfg, DAY))
        assert conn.fetchone("SELECT count(*) FROM raw.batch_ledger")[0] == 0
