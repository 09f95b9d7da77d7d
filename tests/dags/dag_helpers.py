"""Helpers for the DAG tests: a sample world with its meterline.toml, a throwaway Airflow home,
`airflow dags test` in a subprocess, and a digest of every warehouse table."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
AIRFLOW = Path(sys.executable).parent / "airflow"

# In tests a failing task fails at once: Airflow's cluster policy (airflow_local_settings.py in
# $AIRFLOW_HOME/config) sets retries to 0, so `dags test` never waits out a retry delay. The DAGs'
# own retries are asserted in test_dag_integrity.py.
NO_RETRIES_POLICY = '''
def task_policy(task):
    task.retries = 0
'''


def make_world(base: Path, *, days: int, start: str = "2026-10-01", accounts: int = 4) -> Path:
    """`meterline sample` plus the meterline.toml `meterline demo` writes for a DuckDB world."""
    world = base / "world"
    res = subprocess.run(
        [sys.executable, "-m", "meterline.cli", "sample", "--out", str(world), "--accounts",
         str(accounts), "--days", str(days), "--start", start],
        capture_output=True, text=True, timeout=300, env=clean_env(), cwd=base)
    assert res.returncode == 0, res.stderr[-2000:]
    (world / "meterline.toml").write_text("\n".join([
        "[sources]",
        'stripe_fixture = "sources/stripe"',
        'metering_url = "duckdb:///sources/metering.duckdb"',
        'billing_url = "duckdb:///sources/billing.duckdb"',
        "", "[warehouse]", 'url = "duckdb:///.meterline/warehouse.duckdb"',
        "", "[pipeline]", 'exports_dir = "exports"', 'state_dir = ".meterline"', "",
    ]), encoding="utf-8")
    return world


def clean_env() -> dict[str, str]:
    """The environment without any AIRFLOW* or METERLINE_* setting of the caller's."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "METERLINE_"))}


def airflow_env(home: Path, world: Path | None = None, **extra: str) -> dict[str, str]:
    env = {**clean_env(), "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
           "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS), "AIRFLOW__CORE__UNIT_TEST_MODE": "false"}
    if world is not None:
        env["METERLINE_CONFIG"] = str(world / "meterline.toml")
    return {**env, **extra}


def airflow_home(base: Path) -> Path:
    """A fresh Airflow home (SQLite metadata, migrated) whose policy turns retries off."""
    home = base / "airflow"
    (home / "config").mkdir(parents=True)
    (home / "config" / "airflow_local_settings.py").write_text(NO_RETRIES_POLICY, encoding="utf-8")
    res = subprocess.run([str(AIRFLOW), "db", "migrate"], capture_output=True, text=True,
                         timeout=300, env=airflow_env(home), cwd=base)
    assert res.returncode == 0, res.stderr[-2000:]
    return home


def dags_test(env: dict[str, str], dag_id: str, logical_date: str, cwd: Path,
              timeout: int = 900) -> subprocess.CompletedProcess:
    res = subprocess.run([str(AIRFLOW), "dags", "test", dag_id, logical_date],
                         capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    assert res.returncode == 0, (res.stdout[-3000:], res.stderr[-3000:])
    return res


def files_containing(root: Path, needles: list[str]) -> list[str]:
    """Files under `root` whose bytes contain any of `needles`."""
    found = []
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            found += [f"{p}: {n[:6]}…" for n in needles if n.encode() in data]
    return found


@contextlib.contextmanager
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """A Slack-compatible webhook on a free local port: (base URL, the JSON bodies it received)."""
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "body": json.loads(body)})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()
