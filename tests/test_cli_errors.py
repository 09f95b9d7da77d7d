"""A user's mistake gives one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli


def assert_one_line_error(res, needle: str, code: int = 2) -> None:
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert lines and lines[-1].startswith("meterline: error: "), res.stderr
    assert needle in lines[-1], lines[-1]


def test_malformed_config(tmp_path: Path) -> None:
    (tmp_path / "meterline.toml").write_text("[warehouse\nurl=")
    res = run_cli("status", cwd=tmp_path)
    assert_one_line_error(res, "malformed TOML")


def test_missing_config_file(tmp_path: Path) -> None:
    res = run_cli("--config", str(tmp_path / "nope.toml"), "status", cwd=tmp_path)
    assert_one_line_error(res, "config file not found")


def test_unreachable_warehouse(tmp_path: Path) -> None:
    res = run_cli("status", cwd=tmp_path,
                  env={"METERLINE_WAREHOUSE": "postgresql://nobody:canarypw@127.0.0.1:1/none"})
    assert_one_line_error(res, "cannot reach postgresql://nobody@127.0.0.1:1/none")
    assert "canarypw" not in res.stderr + res.stdout


def test_unreadable_source(tmp_path: Path) -> None:
    res = run_cli("run", "--date", "2026-10-01", cwd=tmp_path)
    assert_one_line_error(res, "metering source")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run"], "--date D or --start D1 --end D2"),
        (["run", "--date", "yesterday"], "--date must be a date"),
        (["run", "--start", "2026-10-05", "--end", "2026-10-01"], "before --start"),
        (["close", "--period", "2026-13"], "period must look like YYYY-MM"),
    ],
)
def test_bad_arguments(tmp_path: Path, args: list[str], needle: str) -> None:
    assert_one_line_error(run_cli(*args, cwd=tmp_path), needle)


def test_date_outside_the_sources(tmp_path: Path) -> None:
    res = run_cli("sample", "--out", str(tmp_path / "w"), "--accounts", "4", "--days", "3")
    assert res.returncode == 0, res.stderr
    (tmp_path / "w" / "meterline.toml").write_text(
        '[sources]\nstripe_fixture = "sources/stripe"\n')
    res = run_cli("run", "--date", "2027-01-01", cwd=tmp_path / "w")
    assert_one_line_error(res, "outside the sources (metering covers 2026-10-01 to 2026-10-03)")


def test_close_with_missing_nights(tmp_path: Path) -> None:
    res = run_cli("close", "--period", "2026-10", cwd=tmp_path)
    assert_one_line_error(res, "cannot close 2026-10: nightly runs missing for 31 day(s)")
