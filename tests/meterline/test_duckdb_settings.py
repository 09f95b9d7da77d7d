"""[warehouse] duckdb_memory_limit and duckdb_temp_directory (issue 9: 300M rows under a 4 GiB
limit): checked at load, set on every warehouse connection, and set on dbt's own connection by
the on-run-start hook apply_duckdb_settings() — before the file-access limit, which would
freeze temp_directory."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from meterline.config import load_config
from meterline.dbt import run_dbt
from meterline.errors import ConfigError
from meterline.warehouse import open_connection


def config(tmp_path: Path, extra: str = "") -> Path:
    base = tmp_path / "world"
    base.mkdir(exist_ok=True)
    (base / "meterline.toml").write_text(
        '[warehouse]\nurl = "duckdb:///.meterline/warehouse.duckdb"\n' + extra, encoding="utf-8")
    return base / "meterline.toml"


def settings(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    return con.execute(
        "SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()


@pytest.mark.parametrize("limit, in_effect", [
    ("3GiB", "3.0 GiB"), ("512MB", "488.2 MiB"), ("1.5 GiB", "1.5 GiB"), (" 64mib ", "64.0 MiB"),
    ("2TB", "1.8 TiB"),
])
def test_memory_limit_accepts_sizes(tmp_path: Path, limit: str, in_effect: str) -> None:
    """Every form the config accepts, DuckDB accepts too: the connection runs under it."""
    cfg = load_config(config(tmp_path, f'duckdb_memory_limit = "{limit}"\n'), env={})
    assert cfg.warehouse.duckdb_settings == (("memory_limit", limit.strip()),)
    conn = open_connection(cfg.warehouse)
    try:
        assert settings(conn.raw)[0] == in_effect
    finally:
        conn.close()


@pytest.mark.parametrize("limit, why", [
    ("4", "must be a size"), ("4G", "must be a size"), ("80%", "must be a size"),
    ("3GiB; SET enable_external_access = true", "must be a size"), ("-1GB", "must be a size"),
    ("63MiB", "below the smallest"), ("0.01GB", "below the smallest"),
])
def test_memory_limit_refuses_what_is_not_a_size(tmp_path: Path, limit: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        load_config(config(tmp_path, f'duckdb_memory_limit = "{limit}"\n'), env={})


def test_environment_override_and_relative_temp_directory(tmp_path: Path) -> None:
    path = config(tmp_path, 'duckdb_temp_directory = "spill"\n')
    cfg = load_config(path, env={"METERLINE_WAREHOUSE_DUCKDB_MEMORY_LIMIT": "1GiB"})
    assert cfg.warehouse.duckdb_settings == (
        ("memory_limit", "1GiB"), ("temp_directory", str((path.parent / "spill").resolve())))
    assert load_config(config(tmp_path), env={}).warehouse.duckdb_settings == ()


def test_every_warehouse_connection_gets_them_and_spills(tmp_path: Path) -> None:
    cfg = load_config(config(tmp_path, 'duckdb_memory_limit = "100MiB"\n'
                                       "duckdb_temp_directory = \"/tmp/../" + str(tmp_path)[1:] + "/spill it's\"\n"),
                      env={})
    spill = tmp_path / "spill it's"
    first = open_connection(cfg.warehouse)
    try:
        assert settings(first.raw) == ("100.0 MiB", str(spill))
        # a query that needs several times the limit completes by spilling to the directory
        total = first.raw.execute(
            "SELECT sum(x) FROM (SELECT i AS x, md5(i::varchar) AS h FROM range(3000000) r(i) "
            "ORDER BY h)").fetchone()[0]
        assert total == 3000000 * 2999999 // 2
        assert spill.is_dir()
        # a second connection to the same file in this process shares the instance, which is
        # limited already: the settings hold, and opening does not fail on temp_directory
        second = open_connection(cfg.warehouse, read_only=False)
        try:
            assert settings(second.raw) == ("100.0 MiB", str(spill))
        finally:
            second.close()
    finally:
        first.close()


@pytest.mark.slow
def test_dbt_sets_them_on_its_own_connection(tmp_path: Path) -> None:
    """The on-run-start hook sets them on dbt's connection. Observed through a plain connection
    the test holds on the same file (an instance's settings are shared): without the hook the
    limit would stay DuckDB's default."""
    path = config(tmp_path, 'duckdb_memory_limit = "321MiB"\nduckdb_temp_directory = "spill"\n')
    cfg = load_config(path, env={})
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    plain = duckdb.connect(str(cfg.warehouse.path))
    try:
        assert settings(plain)[0] != "321.0 MiB"
        result = run_dbt(cfg, "seed", extra=["--select", "currencies"])
        assert result.success, result.failures
        assert settings(plain) == ("321.0 MiB", str((path.parent / "spill").resolve()))
        assert not plain.execute("SELECT current_setting('enable_external_access')").fetchone()[0]
    finally:
        plain.close()
    # with meterline's connection open (settings applied, instance limited), dbt still runs:
    # the hook leaves the frozen temp_directory alone
    held = open_connection(cfg.warehouse)
    try:
        result = run_dbt(cfg, "seed", extra=["--select", "currencies"])
        assert result.success, result.failures
        assert settings(held.raw)[0] == "321.0 MiB"
    finally:
        held.close()
