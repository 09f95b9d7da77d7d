"""One meterline run at a time per warehouse.

Two runs of the same interval at once (a nightly started by hand while Airflow's runs, a month
close while its final nightly is still going) must not interleave: each writes batches, rebuilds
the marts, issues invoices. Every runner stage that writes takes this lock first; a second run
refuses at once with a clear error (RunLockedError, exit 2: retry when the first is done), or
waits up to `wait_seconds`. Within one process the lock is re-entrant (the demo calls the nightly,
which calls ingest).

- DuckDB: an exclusive `flock` on `<warehouse file>.run.lock` beside the warehouse (released by
  the kernel when the process dies, so a killed run never leaves it held). The file says who
  holds it.
- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) keyed by the database, held
  on a connection of its own for the whole run (released when that session ends, killed or not).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from meterline.config import WarehouseTarget
from meterline.errors import WarehouseError

F = TypeVar("F", bound=Callable[..., Any])
POLL_SECONDS = 0.5

_held: dict[str, int] = {}
_guard = threading.Lock()


class RunLockedError(WarehouseError):
    """Another meterline run holds the warehouse; nothing was changed by this one."""


def _key(target: WarehouseTarget) -> str:
    if target.kind == "duckdb":
        assert target.path is not None
        return f"duckdb:{target.path.resolve()}"
    return f"postgres:{target.host}:{target.port}/{target.dbname}"


def _advisory_key(target: WarehouseTarget) -> int:
    """A signed 64-bit advisory lock key for the warehouse database."""
    digest = hashlib.sha256(f"meterline-run:{target.dbname}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _refused(target: WarehouseTarget, what: str, holder: str) -> RunLockedError:
    return RunLockedError(
        f"{what}: another meterline run holds the warehouse {target.redacted()} ({holder}); "
        "nothing was changed: run again when it is done")


@contextlib.contextmanager
def _duckdb_lock(target: WarehouseTarget, what: str, wait_seconds: float) -> Iterator[None]:
    assert target.path is not None
    path = target.path.with_name(target.path.name + ".run.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    with open(path, "a+", encoding="utf-8") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    raise _refused(target, what, fh.read().strip() or "holder unknown") from None
                time.sleep(POLL_SECONDS)
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps({"pid": os.getpid(), "run": what,
                                 "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}))
            fh.flush()
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _postgres_lock(target: WarehouseTarget, what: str, wait_seconds: float) -> Iterator[None]:
    import psycopg

    key = _advisory_key(target)
    try:
        conn = psycopg.connect(**target.libpq_kwargs(), autocommit=True,
                               application_name=f"meterline {what}"[:63])
    except psycopg.OperationalError as exc:
        first = (str(exc).strip().splitlines() or ["unreachable"])[-1]
        raise WarehouseError(f"{what}: cannot reach {target.redacted()}: {first}") from exc
    with conn:
        deadline = time.monotonic() + wait_seconds
        while not conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]:
            if time.monotonic() >= deadline:
                row = conn.execute(
                    "SELECT a.pid, a.application_name, a.backend_start FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                    "AND l.granted AND l.database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database()) "
                    "AND l.classid::bigint = %s AND l.objid::bigint = %s LIMIT 1",
                    [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF]).fetchone()
                holder = (f"{row[1] or 'a session'}, backend pid {row[0]}, since {row[2]:%Y-%m-%d %H:%M:%S}"
                          if row else "holder unknown")
                raise _refused(target, what, holder)
            time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s)", [key])


@contextlib.contextmanager
def exclusive(target: WarehouseTarget, what: str, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the warehouse's run lock for the block (re-entrant within the process). Raises
    RunLockedError when another run holds it for longer than `wait_seconds`."""
    key = _key(target)
    with _guard:
        if _held.get(key):
            _held[key] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _guard:
                _held[key] -= 1
        return
    lock = _duckdb_lock if target.kind == "duckdb" else _postgres_lock
    with lock(target, what, wait_seconds):
        with _guard:
            _held[key] = 1
        try:
            yield
        finally:
            with _guard:
                _held.pop(key, None)


def exclusive_run(what: str) -> Callable[[F], F]:
    """Decorate a runner stage `fn(cfg, ...)`: it runs holding the warehouse's run lock."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(cfg: Any, *args: Any, **kwargs: Any) -> Any:
            with exclusive(cfg.warehouse_for("ledger"), what):
                return fn(cfg, *args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap
