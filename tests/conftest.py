"""Shared fixtures. In CI (CI=true) the PostgreSQL and Stripe-peer suites must run: a missing
service fails the test instead of skipping it."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("METERLINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this suite must run, not skip)")
    pytest.skip(reason)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped after."""
    import psycopg

    name = f"meterline_t_{secrets.token_hex(5)}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def localstripe_url(tmp_path: Path) -> Iterator[str]:
    """localstripe (an independent fake Stripe server from PyPI) on a free local port."""
    exe = shutil.which("localstripe", path=str(Path(sys.executable).parent))
    if not exe:
        unavailable("localstripe is not installed")
    port = free_port()
    log = (tmp_path / "localstripe.log").open("w")
    proc = subprocess.Popen([exe, "--port", str(port), "--from-scratch"], stdout=log,
                            stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None:
                    unavailable(f"localstripe exited: {(tmp_path / 'localstripe.log').read_text()[-500:]}")
                time.sleep(0.2)
        else:
            unavailable("localstripe did not start within 30 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: int = 900) -> subprocess.CompletedProcess:
    """Run `meterline` as a user would, in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "meterline.cli", *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


DEMO_ACCOUNTS = 4
_DEMO_CACHE: dict[str, tuple[Path, dict]] = {}


def demo_env() -> dict[str, str]:
    """The environment without METERLINE_* overrides: the shared demo is the DuckDB default."""
    return {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}


def _shared_world(tmp_path_factory: pytest.TempPathFactory, name: str, args: list[str]) -> tuple[Path, dict]:
    """`meterline demo <args>` built once per test run into `<run tmp>/shared_<name>/world` and
    shared: under pytest-xdist the first worker to need it builds it under a file lock in the
    run's common temporary folder, the others wait and reuse it. Returns (folder, summary)."""
    import fcntl
    import json

    if name in _DEMO_CACHE:
        return _DEMO_CACHE[name]
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the folder all workers of this run share
    base = root / f"shared_{name}"
    directory, done = base / "world", base / "summary.json"
    with (root / f"shared_{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(base, ignore_errors=True)
            base.mkdir(parents=True)
            res = subprocess.run(
                [sys.executable, "-m", "meterline.cli", "demo", "--dir", str(directory), *args, "--json"],
                cwd=base, env=demo_env(), capture_output=True, text=True, timeout=1200)
            assert res.returncode == 0, res.stderr[-3000:]
            done.write_text(res.stdout)
    _DEMO_CACHE[name] = (directory, json.loads(done.read_text()))
    return _DEMO_CACHE[name]


@pytest.fixture(scope="session")
def demo_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `meterline demo` (4 accounts, seed 7; nights 2026-10-01 .. 2026-11-03; 2026-10 closed)
    built once per test run and shared: read it, or copy it (`copy_world`) before changing
    anything."""
    directory, summary = _shared_world(tmp_path_factory, "demo_world", ["--accounts", str(DEMO_ACCOUNTS)])
    assert summary["accounts"] == DEMO_ACCOUNTS and summary["closed_periods"] == ["2026-10"]
    # this world's planted discrepancies too: every one found, nothing else flagged
    assert summary["discrepancies_found"] == summary["discrepancies_planted"] >= 6, summary["discrepancies_missed"]
    assert summary["false_positives"] == 0, summary["false_positive_findings"]
    return directory


THREE_MONTH_CLOSED = ["2026-10", "2026-11", "2026-12"]


@pytest.fixture(scope="session")
def three_month_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A clean `meterline demo` over three closed months: 6 accounts, seed 1, nights 2026-10-01 ..
    2027-01-04, 2026-10, 2026-11 and 2026-12 closed (31, 30 and 31 days). Seed 1 leaves an
    invoice unpaid in each month, so receivables age past 30 days. Shared like `demo_world`;
    returns (folder, the demo's summary)."""
    directory, summary = _shared_world(tmp_path_factory, "three_month_world",
                                       ["--accounts", "6", "--seed", "1", "--days", "96", "--clean"])
    assert summary["closed_periods"] == THREE_MONTH_CLOSED, summary["closed_periods"]
    return directory, summary


def debian_tool(tmp_path_factory: pytest.TempPathFactory, package: str, names: tuple[str, ...]) -> str:
    """A command from Debian's `package` (the first of `names` on PATH). Outside CI a missing one
    skips; with CI=true this installs it (apt-get, under a file lock the xdist workers share, as
    two apt-gets at once would fight over dpkg's lock) and fails, not skips, when it cannot."""
    import fcntl

    def installed() -> str | None:
        return next((found for name in names if (found := shutil.which(name))), None)

    if found := installed():
        return found
    if not IN_CI:
        pytest.skip(f"{names[0]} is not installed (apt-get install -y {package}); CI=true installs it")
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    with (root / "apt_install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if found := installed():  # the other worker installed it meanwhile
            return found
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for step in (["apt-get", "update"],
                     ["apt-get", "install", "-y", "--no-install-recommends", package]):
            try:
                res = subprocess.run(step, env=env, capture_output=True, text=True, timeout=900)
            except (OSError, subprocess.TimeoutExpired) as exc:
                pytest.fail(f"CI=true: cannot install {package} ({' '.join(step)}: {exc})")
            if res.returncode != 0:
                pytest.fail(f"CI=true: cannot install {package} ({' '.join(step)} exited "
                            f"{res.returncode}): {res.stderr[-500:]}")
    if not (found := installed()):
        pytest.fail(f"CI=true: {package} was installed but none of {', '.join(names)} is on PATH")
    return found


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Debian's chromium (finance reports print their PDF with it); installed with CI=true."""
    from exports.reports.pdf import BROWSERS

    return debian_tool(tmp_path_factory, "chromium", tuple(BROWSERS))


@pytest.fixture(scope="session")
def docker_compose(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Debian's docker-compose (v1: validates a compose file without an engine); installed with
    CI=true."""
    return debian_tool(tmp_path_factory, "docker-compose", ("docker-compose",))


def copy_world(world: Path, tmp_path: Path) -> Path:
    target = tmp_path / "world"
    shutil.copytree(world, target, symlinks=True)
    return target


# The longest tests, started first so that they run side by side from the start instead of one
# of them finishing alone at the end. `./dev test` runs pytest-xdist with `--maxschedchunk 1`:
# each worker starts with two consecutive tests, then gets one more whenever it has fewer than
# two waiting (with the default chunks, one worker got the first ≈ 37 tests, every long one of
# them, and ran them one after another while the others idled: the run took 47 min). So the first three long
# ones are placed 0, 2, 4, a short test after each; reruns builds demo_world, which later tests
# (the loader kills among them) read, so it starts at once.
FIRST = (
    "tests/bench/test_harness.py::test_smoke_bench",
    "tests/reliability/test_reruns.py::test_three_runs_of_a_night_and_a_backfill_change_nothing",  # demo_world
    "tests/test_demo.py::test_clean_world_flags_nothing",  # builds three_month_world
    "tests/test_demo.py::test_demo_postgres",
    "tests/dags/test_airflow_dagrun_month_close.py",
    "tests/reliability/test_loader_kills.py",
    "tests/dags/test_airflow_dagrun_nightly.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((i for i, prefix in enumerate(FIRST) if item.nodeid.startswith(prefix)), len(FIRST))

    items.sort(key=rank)  # stable: the rest keep their order
    long = [item for item in items if rank(item) < len(FIRST)]
    rest = items[len(long):]
    head: list[pytest.Item] = []
    for item in long[:3]:  # each worker's first two tests: a long one and a short one
        head += [item, *rest[:1]]
        rest = rest[1:]
    items[:] = head + long[3:] + rest
