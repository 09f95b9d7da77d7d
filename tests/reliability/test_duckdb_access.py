"""Security (issue 10): DuckDB's access to files is limited to the configured paths — the
warehouse's own folder, the state dir, dbt's seeds and the configured file metering source — on
meterline's warehouse connections, the source readers and dbt's connection. Outside them: no
read_csv / read_parquet, no COPY TO, no ATTACH, no extension install, and the limit cannot be
lifted from SQL."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ingest.readers import FileReader
from meterline.config import load_config
from meterline.dbt import run_dbt
from meterline.warehouse import open_connection

REFUSED = ("file system operations are disabled", "Cannot enable external access",
           "Cannot change allowed_directories", "Permission Error")


def world(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A config with a file metering source under sources/usage/, and a secret file elsewhere."""
    base = tmp_path / "world"
    usage = base / "sources" / "usage"
    usage.mkdir(parents=True)
    (usage / "day1.csv").write_text("hour_start,quantity\n2026-10-01 00:00:00,5\n")
    secret = tmp_path / "elsewhere" / "secret.csv"
    secret.parent.mkdir()
    secret.write_text("password\ncanary-Hunter2\n")
    (base / "meterline.toml").write_text(
        '[sources]\nmetering_path = "sources/usage/*.csv"\nmetering_format = "csv"\n'
        '[warehouse]\nurl = "duckdb:///.meterline/warehouse.duckdb"\n', encoding="utf-8")
    return base, usage, secret


def refused(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    with pytest.raises(duckdb.Error) as err:
        con.execute(sql)
    message = str(err.value)
    assert any(r in message for r in REFUSED), message
    return message


def test_the_warehouse_connection_reaches_only_configured_paths(tmp_path: Path) -> None:
    base, usage, secret = world(tmp_path)
    cfg = load_config(base / "meterline.toml", env={})
    assert str(usage) in cfg.warehouse.file_dirs and str(cfg.state_dir) in cfg.warehouse.file_dirs
    conn = open_connection(cfg.warehouse)
    try:
        raw = conn.raw
        # the configured source and the warehouse's own tables work
        assert raw.execute(f"SELECT sum(quantity) FROM read_csv('{usage}/*.csv')").fetchone() == (5,)
        raw.execute("CREATE TABLE t AS SELECT 1 AS x")
        raw.execute(f"COPY t TO '{cfg.state_dir}/ok.csv'")
        # nothing else
        refused(raw, f"SELECT * FROM read_csv('{secret}')")
        refused(raw, "SELECT * FROM read_csv('/etc/passwd')")
        refused(raw, f"COPY t TO '{secret.parent}/out.csv'")
        refused(raw, f"ATTACH '{secret.parent}/other.duckdb' AS other")
        refused(raw, "INSTALL httpfs")
        refused(raw, "SET enable_external_access = true")
        refused(raw, "SET allowed_directories = ['/']")
        assert not (secret.parent / "out.csv").exists() and not (secret.parent / "other.duckdb").exists()
    finally:
        conn.close()


def test_the_file_reader_reads_its_files_only(tmp_path: Path) -> None:
    base, usage, secret = world(tmp_path)
    reader = FileReader("metering", str(usage / "*.csv"), "csv")
    try:
        assert reader.fetchone(f"SELECT count(*) FROM {reader.relation}") == (1,)
        refused(reader.con, f"SELECT * FROM read_csv('{secret}')")
    finally:
        reader.close()


@pytest.mark.slow
def test_dbt_reaches_only_configured_paths(tmp_path: Path) -> None:
    """On dbt's own connection (the on-run-start hook limit_file_access, applied here by the
    probe macro): a configured file reads, a file elsewhere is refused."""
    base, usage, secret = world(tmp_path)
    cfg = load_config(base / "meterline.toml", env={})
    ok = run_dbt(cfg, "run-operation", extra=["probe_file_access", "--args", f"{{path: '{usage}/day1.csv'}}"])
    assert ok.success, ok.failures
    bad = run_dbt(cfg, "run-operation", extra=["probe_file_access", "--args", f"{{path: '{secret}'}}"])
    assert not bad.success
    log = (cfg.state_dir / "dbt" / "logs" / "dbt.log").read_text(encoding="utf-8")
    assert "file system operations are disabled" in log and "canary-Hunter2" not in log
