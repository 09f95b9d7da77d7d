from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from meterline.config import load_config, parse_db_url
from meterline.errors import ConfigError


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(env={})
    assert cfg.file is None
    assert cfg.warehouse.kind == "duckdb"
    assert cfg.warehouse.path == (tmp_path / ".meterline" / "warehouse.duckdb").resolve()
    assert cfg.get("pipeline", "late_window_days") == 3
    assert cfg.get("reconcile", "tolerance_rel") == Decimal("0.001")


def test_file_then_environment_overrides(tmp_path: Path) -> None:
    f = tmp_path / "conf" / "meterline.toml"
    f.parent.mkdir()
    f.write_text('[warehouse]\nurl = "duckdb:///wh/x.duckdb"\n[pipeline]\nlate_window_days = 5\n'
                 '[reconcile]\ntolerance_rel = "0.25"\n')
    cfg = load_config(f, env={})
    assert cfg.warehouse.path == (f.parent / "wh" / "x.duckdb").resolve()
    assert cfg.get("pipeline", "late_window_days") == 5
    assert cfg.get("reconcile", "tolerance_rel") == Decimal("0.25")
    env = {"METERLINE_WAREHOUSE": "postgresql://bob:s3cret@db.example:6543/wh",
           "METERLINE_PIPELINE_LATE_WINDOW_DAYS": "7",
           "METERLINE_STRIPE_API_KEY": "sk_test_canary"}
    cfg = load_config(f, env=env)
    wh = cfg.warehouse
    assert (wh.kind, wh.host, wh.port, wh.user, wh.password, wh.dbname) == (
        "postgres", "db.example", 6543, "bob", "s3cret", "wh")
    assert "s3cret" not in wh.redacted()
    assert cfg.get("pipeline", "late_window_days") == 7
    assert cfg.stripe_api_key == "sk_test_canary"
    assert "sk_test_canary" not in repr(cfg)


def test_absolute_duckdb_path(tmp_path: Path) -> None:
    t = parse_db_url(f"duckdb:///{tmp_path}/a.duckdb", Path("/elsewhere"), "x")
    assert t.path == tmp_path / "a.duckdb"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[warehouse\nurl = 1", "malformed TOML"),
        ("[nope]\nx = 1\n", "unknown section [nope]"),
        ("[pipeline]\nlate_windw_days = 3\n", "unknown key [pipeline] late_windw_days"),
        ("[pipeline]\nlate_window_days = \"three\"\n", "late_window_days must be int"),
        ("[reconcile]\ntolerance_rel = 0.001\n", "quoted decimal string"),
        ("[sources]\nstripe_api_key = \"sk_live_x\"\n", "is a secret"),
        ("[warehouse]\nurl = \"mysql://x/y\"\n", "unsupported URL"),
        ("[warehouse]\nurl = \"postgresql://:pw@/\"\n", "needs a host and a database"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, needle: str) -> None:
    f = tmp_path / "meterline.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(f, env={})
    assert needle in str(err.value)
    assert "pw" not in str(err.value)


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml", env={})


def test_bad_env_override(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="METERLINE_PIPELINE_LATE_WINDOW_DAYS"):
        load_config(None, env={"METERLINE_PIPELINE_LATE_WINDOW_DAYS": "soon"})
