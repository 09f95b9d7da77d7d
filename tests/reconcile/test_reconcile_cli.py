"""`meterline reconcile` and `meterline explain` on a copy of the shared demo world (DuckDB), as a
user runs them: the GX checkpoint's history and Data Docs, an explanation that silences one drift
until it expires (data time) or is revoked, the alert a webhook receives, and a webhook that is
down: the run still fails, and says why."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import copy_world, demo_env, free_port, run_cli
from invariants import check_all

from meterline.config import load_config
from meterline.warehouse import connect

pytestmark = pytest.mark.slow

TOKEN = "T000/B000/canary-webhook-token"


class Hook:
    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                hook.payloads.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/{TOKEN}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def _cli(d: Path, *args: str, env: dict[str, str] | None = None):
    return run_cli(*args, cwd=d, env={**demo_env(), **(env or {})})


def _details(d: Path, check: str) -> dict[str, Any]:
    res = _cli(d, "reconcile", "--details", "--check", check, "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


def _mart(d: Path, sql: str, params: list[Any] | None = None) -> list[tuple]:
    with connect(load_config(d / "meterline.toml", env=demo_env()).warehouse) as conn:
        return conn.fetchall(sql, params or [])


def test_explain_silences_one_drift_until_it_expires_and_alerts_reach_the_webhook(
        demo_world: Path, tmp_path: Path, hook: Hook) -> None:
    d = copy_world(demo_world, tmp_path)
    before = _details(d, "usage_daily")
    drift = [f for f in before["findings"] if f["status"] == "drift"]
    assert drift, before
    f = drift[0]
    assert f["difference"] is not None and f["unit"] == "units"
    key = ["--account", f["account_id"], "--category", f["category"], "--day", f["day"]]
    # the check's history: the status suite failed, with what it observed and how many rows
    status_check = {c["check_name"]: c for c in before["checks"]}["status_usage_daily"]
    assert status_check["outcome"] == "failed" and status_check["unexpected_rows"] >= 1
    assert '"drift"' in status_check["observed_value"]

    # an explanation that expired before as_of (2026-11-04): it covers nothing
    res = _cli(d, "explain", "--check", "usage_daily", *key, "--reason", "counter fixed upstream",
               "--by", "alice", "--until", "2026-11-04", "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    expired = json.loads(res.stdout)
    assert (expired["explained_by"], expired["expires_at"]) == ("alice", "2026-11-04T00:00:00")
    env = {"METERLINE_ALERTS_SLACK_WEBHOOK_URL": hook.url}
    res = _cli(d, "reconcile", "--json", env=env)
    assert res.returncode == 1, res.stderr[-3000:]  # drift remains
    rec = json.loads(res.stdout)
    assert any((g["check_name"], g["account_id"], g["day"]) == ("usage_daily", f["account_id"], f["day"])
               for g in rec["findings"])
    assert rec["data_docs"] and Path(rec["data_docs"]).is_file()
    assert rec["alerts"]["failed"] is False and rec["alerts"]["channels"]["slack"]["sent"]
    text = "\n".join(p["text"] for p in hook.payloads)
    assert f["account_id"] in text and "meterline reconcile --details --check usage_daily" in text
    assert TOKEN not in res.stdout + res.stderr

    # one that holds past as_of: the row is explained, no longer a finding, and the webhook hears
    # that it is resolved
    res = _cli(d, "explain", "--check", "usage_daily", *key, "--reason", "known billing counter bug BILL-42",
               "--by", "bob", "--until", "2026-12-01", "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    live = json.loads(res.stdout)
    hook.payloads.clear()
    res = _cli(d, "reconcile", "--json", env=env)
    rec = json.loads(res.stdout)
    assert not any((g["check_name"], g["account_id"], g["day"]) == ("usage_daily", f["account_id"], f["day"])
                   for g in rec["findings"])
    assert _mart(d, "SELECT status, classified_status, explanation_id FROM marts.rec_usage_daily "
                    "WHERE account_id = ? AND category = ? AND CAST(day AS VARCHAR) = ?",
                 [f["account_id"], f["category"], f["day"]]) == [("explained", "drift", live["explanation_id"])]
    assert rec["alerts"]["resolved"] == 1
    assert any("resolved" in p["text"].lower() and f["account_id"] in p["text"] for p in hook.payloads)
    listed = json.loads(_cli(d, "explain", "--list", "--json").stdout)["explanations"]
    assert [e["explanation_id"] for e in listed] == [expired["explanation_id"], live["explanation_id"]]

    # revoked: the drift is a finding again
    assert _cli(d, "explain", "--revoke", live["explanation_id"]).returncode == 0
    res = _cli(d, "reconcile", "--json", env=env)
    rec = json.loads(res.stdout)
    assert any((g["check_name"], g["account_id"], g["day"]) == ("usage_daily", f["account_id"], f["day"])
               for g in rec["findings"])


def test_a_webhook_that_is_down_fails_the_run_and_says_why(demo_world: Path, tmp_path: Path) -> None:
    d = copy_world(demo_world, tmp_path)
    down = f"http://127.0.0.1:{free_port()}/services/{TOKEN}"
    # a new night's findings must be alerted: forget what earlier nights alerted
    with connect(load_config(d / "meterline.toml", env=demo_env()).warehouse) as conn:
        conn.execute("DELETE FROM ledger.alert_state")
    res = _cli(d, "reconcile", env={"METERLINE_ALERTS_SLACK_WEBHOOK_URL": down})
    assert res.returncode == 5, (res.returncode, res.stderr[-2000:])
    out = res.stdout + res.stderr
    assert "ALERT FAILED on slack" in out and "refused" in out
    assert "DRIFT:" in out  # the drift is still reported
    assert TOKEN not in out
    # issue 10's invariants on the warehouse the failed run leaves
    with connect(load_config(d / "meterline.toml", env=demo_env()).warehouse, read_only=True) as conn:
        check_all(conn, d / "sources" / "metering.duckdb")


def test_explain_rejects_what_it_cannot_record(demo_world: Path, tmp_path: Path) -> None:
    d = copy_world(demo_world, tmp_path)
    cases = [
        (["--check", "usage_daily", "--reason", "x", "--by", "a"], "must name what it covers"),
        (["--check", "nope", "--account", "a", "--reason", "x", "--by", "a"], "unknown check"),
        (["--check", "usage_daily", "--account", "a", "--reason", " ", "--by", "a"], "needs a reason"),
        (["--check", "usage_daily", "--account", "a", "--reason", "x", "--by", "a", "--day", "2026-13-01"],
         "--day must look like"),
        (["--revoke", "exp-99999"], "no explanation"),
    ]
    for args, message in cases:
        res = _cli(d, "explain", *args)
        assert res.returncode == 2, (args, res.stderr)
        assert message in res.stderr and "Traceback" not in res.stderr, (args, res.stderr)
