"""Configuration: one file (`meterline.toml`) with `METERLINE_*` environment overrides.

Lookup order for the file: the `--config` option, then `$METERLINE_CONFIG`, then
`./meterline.toml`. Without a file the defaults apply. Relative paths in the file are relative
to the file's folder (or to the working directory when there is no file).

Every key can be overridden from the environment as `METERLINE_<SECTION>_<KEY>` (for
example `METERLINE_PIPELINE_LATE_WINDOW_DAYS=5`); `METERLINE_WAREHOUSE` is a short form of
`METERLINE_WAREHOUSE_URL`. Secrets (the Stripe API key, database passwords) come only from the
environment: `METERLINE_STRIPE_API_KEY`, and PGPASSWORD or the URL given in the environment.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from meterline.errors import ConfigError

CONFIG_FILE_NAME = "meterline.toml"
DEFAULT_WAREHOUSE = "duckdb:///.meterline/warehouse.duckdb"
#: the stages that may log in to a PostgreSQL warehouse as their own role (deploy/postgres-roles.sql):
#: ingest writes raw; dbt builds its schemas; ledger is meterline's bookkeeping (reconciliation,
#: alerts, invoice versions, close, void, push, explanations); reporting reads marts
STAGES = ("ingest", "dbt", "ledger", "reporting")

# section -> key -> (type, default)
SCHEMA: dict[str, dict[str, tuple[type, Any]]] = {
    "warehouse": {
        "url": (str, DEFAULT_WAREHOUSE),
        # PostgreSQL only: a login per stage (deploy/postgres-roles.sql); empty = `url`'s
        "ingest_url": (str, ""),
        "dbt_url": (str, ""),
        "ledger_url": (str, ""),
        "reporting_url": (str, ""),
        # DuckDB only: the warehouse's memory limit ("3GiB", "512MB"; empty = DuckDB's default,
        # 80 % of the machine's memory) and where it spills when a query needs more (empty =
        # DuckDB's default, `<warehouse file>.tmp`). Set on every warehouse connection and by
        # dbt's on-run-start hook (macros/file_access.sql), before the file-access limit.
        "duckdb_memory_limit": (str, ""),
        "duckdb_temp_directory": (str, ""),
    },
    "sources": {
        "metering_url": (str, "duckdb:///sources/metering.duckdb"),
        "metering_schema": (str, ""),
        "metering_table": (str, "usage_hourly"),
        "metering_path": (str, ""),
        "metering_format": (str, "parquet"),
        "billing_url": (str, "duckdb:///sources/billing.duckdb"),
        "billing_schema": (str, ""),
        "stripe_api_base": (str, "https://api.stripe.com"),
        "stripe_fixture": (str, ""),
        "stripe_server_filters": (bool, True),
        "stripe_shards": (int, 4),
        "stripe_max_concurrency": (int, 4),
        "stripe_max_attempts": (int, 6),
        "stripe_timeout_seconds": (float, 80.0),
        "stripe_page_limit": (int, 100),
        "stripe_resources": (str, ""),
    },
    "pipeline": {
        "state_dir": (str, ".meterline"),
        "exports_dir": (str, "exports"),
        "late_window_days": (int, 3),
        "stripe_invoice_grace_days": (int, 2),
        "quarantine_max_share": (Decimal, Decimal("0.01")),
        "chunk_rows": (int, 200_000),
    },
    "reconcile": {
        "tolerance_abs": (int, 0),
        "tolerance_rel": (Decimal, Decimal("0.001")),
        # per data category, overriding the two above: { api_calls = { abs = 10, rel = "0.002" } }
        "tolerance_by_category": (dict, {}),
        # a source whose newest data is older than this (data time, against as_of) is stale
        "freshness_max_hours": (int, 36),
        # Great Expectations' project folder (its Data Docs HTML is under uncommitted/data_docs/)
        "gx_dir": (str, ".meterline/gx"),
    },
    "alerts": {
        # Slack-compatible incoming webhook: its URL is a secret (METERLINE_ALERTS_SLACK_WEBHOOK_URL)
        "smtp_host": (str, ""),
        "smtp_port": (int, 25),
        "smtp_starttls": (bool, False),
        "smtp_user": (str, ""),
        "smtp_from": (str, "meterline@localhost"),
        "smtp_to": (str, ""),  # comma-separated recipients
        "timeout_seconds": (float, 10.0),
        "top_offenders": (int, 5),
    },
    "reports": {
        # finance reports (meterline report daily|month): who gets them by email; the SMTP server,
        # sender and password are [alerts]' (smtp_host, smtp_port, smtp_starttls, smtp_user, smtp_from)
        "smtp_to": (str, ""),  # comma-separated recipients
    },
    "exports": {
        # personal data the finance reports may carry (docs/exports.md "Personal data"): none by
        # default; any of PERSONAL_DATA (TOML array; comma-separated in the environment)
        "include_personal_data": (tuple, ()),
    },
}
# kinds of personal data a file may carry only when [exports] include_personal_data names them
PERSONAL_DATA = ("name", "email", "address", "phone")

# Settings that name a SQL object (a source schema or table). They are quoted wherever they meet
# SQL, and allow-listed here as well: the readers rewrite `?` placeholders in the SQL text for
# psycopg (`%s`, `{}`) and SQLAlchemy (`:p0`), which a `?`, `%`, `{` or `:` inside a quoted name
# would corrupt, and PostgreSQL silently truncates names longer than 63 bytes.
IDENTIFIER_SETTINGS = {("sources", "metering_schema"), ("sources", "metering_table"), ("sources", "billing_schema")}
IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# A data category (a key of [reconcile] tolerance_by_category) becomes a SQL string literal in dbt
# (macros/reconciliation.sql) and a Great Expectations row condition.
CATEGORY_RE = re.compile(r"[A-Za-z0-9_]{1,63}")
JINJA_RE = re.compile(r"\{[{%#]")
# [warehouse] duckdb_memory_limit: a size DuckDB's memory_limit accepts, in a form checked here
MEMORY_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", re.IGNORECASE)
MEMORY_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
                "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
MIN_DUCKDB_MEMORY = 64 * 1024**2  # below this dbt's build cannot pin its buffers

# secrets: only from the environment, as METERLINE_<SECTION>_<KEY>
SECRET_KEYS = {("sources", "stripe_api_key"), ("alerts", "slack_webhook_url"), ("alerts", "smtp_password"),
               # a stage login's password (METERLINE_WAREHOUSE_INGEST_PASSWORD, ...), when its URL has none
               ("warehouse", "ingest_password"), ("warehouse", "dbt_password"), ("warehouse", "ledger_password"),
               ("warehouse", "reporting_password")}


def fixed_dir(pattern: str) -> Path:
    """The folder a path or glob reads from: its parts before the first wildcard (a file's
    folder when there is none)."""
    path = Path(pattern)
    fixed: list[str] = []
    for part in path.parts:
        if any(ch in part for ch in "*?[{"):
            return Path(*fixed).resolve()
        fixed.append(part)
    try:
        is_dir = path.is_dir()
    except OSError:  # a name the file system refuses (too long): not a folder
        is_dir = False
    return (path if is_dir else path.parent).resolve()


@dataclass(frozen=True)
class WarehouseTarget:
    """Where the warehouse lives. `kind` is `duckdb` or `postgres`."""

    url: str
    kind: str
    path: Path | None = None  # duckdb file
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    dbname: str = ""
    # DuckDB only: the directories the warehouse may read or write files in besides its own
    # database (meterline.warehouse.limit_duckdb_files): the state dir and the configured file
    # sources. Config.warehouse fills it; a target made otherwise gets none and is not limited.
    file_dirs: tuple[str, ...] = ()
    # DuckDB only: settings applied to every connection before the file limit (memory_limit,
    # temp_directory; Config.duckdb_settings)
    duckdb_settings: tuple[tuple[str, str], ...] = ()

    def redacted(self) -> str:
        if self.kind == "duckdb":
            return f"duckdb:///{self.path}"
        user = f"{self.user}@" if self.user else ""
        return f"postgresql://{user}{self.host}:{self.port}/{self.dbname}"

    def libpq_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "connect_timeout": 5,
        }
        if self.user:
            kw["user"] = self.user
        if self.password:
            kw["password"] = self.password
        return kw


def parse_db_url(url: str, base_dir: Path, what: str) -> WarehouseTarget:
    """Parse `duckdb:///path` or `postgresql://user:pw@host:port/db`."""
    if url.startswith("duckdb:///"):
        # SQLAlchemy convention: duckdb:///relative/file, duckdb:////absolute/file
        raw = url[len("duckdb:///") :]
        if not raw:
            raise ConfigError(f"{what}: duckdb URL needs a file path, got {url!r}")
        path = Path(raw)
        if not path.is_absolute():
            path = base_dir / path
        return WarehouseTarget(url=url, kind="duckdb", path=path.resolve())
    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        dbname = parts.path.lstrip("/")
        if not parts.hostname or not dbname:
            raise ConfigError(f"{what}: PostgreSQL URL needs a host and a database, got {_redact(url)!r}")
        try:
            port = parts.port or 5432
        except ValueError as exc:
            raise ConfigError(f"{what}: bad port in {_redact(url)!r}") from exc
        return WarehouseTarget(
            url=url,
            kind="postgres",
            host=parts.hostname,
            port=port,
            user=parts.username or os.environ.get("PGUSER", ""),
            password=parts.password or os.environ.get("PGPASSWORD", ""),
            dbname=dbname,
        )
    raise ConfigError(
        f"{what}: unsupported URL {_redact(url)!r} (use duckdb:///path/file.duckdb or postgresql://host/db)"
    )


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


@dataclass
class Config:
    values: dict[str, dict[str, Any]]
    base_dir: Path
    file: Path | None = None
    secrets: dict[str, str] = field(default_factory=dict, repr=False)

    def get(self, section: str, key: str) -> Any:
        return self.values[section][key]

    @property
    def warehouse(self) -> WarehouseTarget:
        target = parse_db_url(self.get("warehouse", "url"), self.base_dir, "warehouse.url")
        if target.kind != "duckdb":
            return target
        return dataclasses.replace(target, file_dirs=tuple(sorted(self.duckdb_file_dirs())),
                                   duckdb_settings=self.duckdb_settings())

    def duckdb_settings(self) -> tuple[tuple[str, str], ...]:
        """The DuckDB settings of the warehouse ([warehouse] duckdb_memory_limit and
        duckdb_temp_directory), as (name, value) pairs for `SET name = 'value'`."""
        out: list[tuple[str, str]] = []
        limit = self.get("warehouse", "duckdb_memory_limit").strip()
        if limit:
            out.append(("memory_limit", limit))
        if self.get("warehouse", "duckdb_temp_directory"):
            out.append(("temp_directory", str(self.path("warehouse", "duckdb_temp_directory"))))
        return tuple(out)

    def warehouse_for(self, stage: str) -> WarehouseTarget:
        """The warehouse as `stage` logs in to it (STAGES): `[warehouse] <stage>_url` when set
        (PostgreSQL: the same database as `url`, another login), else `url`."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r} (known: {', '.join(STAGES)})")
        url = self.get("warehouse", f"{stage}_url")
        if not url:
            return self.warehouse
        target = parse_db_url(url, self.base_dir, f"warehouse.{stage}_url")
        if urlsplit(url).password is None:  # never `url`'s PGPASSWORD: the stage's own, or none
            target = dataclasses.replace(target, password=self.secret("warehouse", f"{stage}_password"))
        return target

    def warehouse_logins(self) -> list[WarehouseTarget]:
        """Every login configured for the warehouse: `url`'s and each stage's."""
        return [self.warehouse, *(self.warehouse_for(s) for s in STAGES if self.get("warehouse", f"{s}_url"))]

    def duckdb_file_dirs(self) -> set[str]:
        """The directories a DuckDB warehouse may reach files in: the warehouse's own folder,
        the state dir (staged extracts, dbt's target), dbt's seeds and the folder of a file
        metering source (the part of `metering_path` before its first wildcard)."""
        from meterline import dbt  # at call time: the dbt project in use (tests point it at a copy)

        dirs = {str(self.state_dir), str((dbt.DBT_PROJECT_DIR / "seeds").resolve())}  # seeds are COPYed
        url = self.get("warehouse", "url")
        dirs.add(str(parse_db_url(url, self.base_dir, "warehouse.url").path.parent))
        pattern = self.get("sources", "metering_path")
        if pattern:
            dirs.add(str(fixed_dir(pattern if Path(pattern).is_absolute() else str(self.base_dir / pattern))))
        return dirs

    def path(self, section: str, key: str) -> Path:
        p = Path(self.get(section, key))
        return (p if p.is_absolute() else self.base_dir / p).resolve()

    @property
    def state_dir(self) -> Path:
        return self.path("pipeline", "state_dir")

    @property
    def exports_dir(self) -> Path:
        return self.path("pipeline", "exports_dir")

    @property
    def stripe_api_key(self) -> str:
        return self.secrets.get("stripe_api_key", "")

    def secret(self, section: str, key: str) -> str:
        """A secret from the environment (METERLINE_<SECTION>_<KEY>), or ""."""
        return self.secrets.get(key if (section, key) == ("sources", "stripe_api_key") else f"{section}_{key}", "")

    @property
    def personal_data(self) -> frozenset[str]:
        """The kinds of personal data exports may carry ([exports] include_personal_data)."""
        return frozenset(self.get("exports", "include_personal_data"))

    def tolerance(self, category: str) -> tuple[int, Decimal]:
        """(absolute, relative) tolerance of a data category's usage comparisons."""
        own = self.get("reconcile", "tolerance_by_category").get(category, {})
        return own.get("abs", self.get("reconcile", "tolerance_abs")), own.get("rel", self.get("reconcile", "tolerance_rel"))

    def source_target(self, name: str) -> WarehouseTarget:
        return parse_db_url(self.get("sources", f"{name}_url"), self.base_dir, f"sources.{name}_url")

    def dbt_vars(self) -> dict[str, Any]:
        return {
            "late_window_days": self.get("pipeline", "late_window_days"),
            "stripe_invoice_grace_days": self.get("pipeline", "stripe_invoice_grace_days"),
            "tolerance_abs": self.get("reconcile", "tolerance_abs"),
            "tolerance_rel": str(self.get("reconcile", "tolerance_rel")),
            "tolerance_by_category": {
                category: {"abs": abs_, "rel": str(rel)}
                for category in sorted(self.get("reconcile", "tolerance_by_category"))
                for abs_, rel in [self.tolerance(category)]
            },
            "freshness_max_hours": self.get("reconcile", "freshness_max_hours"),
        }


def _coerce(section: str, key: str, value: Any, origin: str) -> Any:
    typ, _ = SCHEMA[section][key]
    try:
        if typ is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float):
                raise ValueError
            return int(value)
        if typ is float:
            # durations only (never money)
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if typ is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
                return value.lower() in ("true", "1", "yes")
            raise ValueError
        if typ is Decimal:
            if isinstance(value, float):
                # TOML floats are binary: ask for a string so the number stays exact.
                raise ConfigError(
                    f"{origin}: [{section}] {key} must be a quoted decimal string, e.g. \"0.001\""
                )
            number = Decimal(str(value))
            if not number.is_finite():
                raise ValueError
            return number
        if typ is str:
            if not isinstance(value, str):
                raise ValueError
            if "\x00" in value:
                raise ConfigError(f"{origin}: [{section}] {key} must not contain a NUL character")
            if (section, key) in IDENTIFIER_SETTINGS and value != "" and not IDENTIFIER_RE.fullmatch(value):
                raise ConfigError(
                    f"{origin}: [{section}] {key} must be a plain SQL name: a letter or _, then letters, "
                    f"digits or _, at most 63 characters (got {_shown(value)})")
            if (section, key) == ("sources", "metering_table") and value == "":
                raise ConfigError(f"{origin}: [{section}] {key} must not be empty")
            return value
        if typ is dict:
            return _tolerances(value, origin)
        if typ is tuple:
            return _personal_data(section, key, value, origin)
    except (ValueError, InvalidOperation) as exc:
        raise ConfigError(
            f"{origin}: [{section}] {key} must be {typ.__name__}, got {value!r}"
        ) from exc
    return value


def _personal_data(section: str, key: str, value: Any, origin: str) -> tuple[str, ...]:
    """[exports] include_personal_data: a list of PERSONAL_DATA kinds, sorted, each once."""
    if isinstance(value, str):  # from the environment: comma-separated
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{origin}: [{section}] {key} must be a list of strings, got {value!r}")
    unknown = [v for v in value if v not in PERSONAL_DATA]
    if unknown:
        raise ConfigError(f"{origin}: [{section}] {key}: unknown kind {_shown(unknown[0])} "
                          f"(known: {', '.join(PERSONAL_DATA)})")
    return tuple(sorted(set(value)))


def _shown(value: str, limit: int = 60) -> str:
    """A setting's value for an error message: repr, cut short."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"


def _tolerances(value: Any, origin: str) -> dict[str, dict[str, Any]]:
    """[reconcile] tolerance_by_category: category -> {abs: int >= 0, rel: decimal string >= 0}."""
    import json

    if isinstance(value, str):  # from the environment: JSON
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{origin}: [reconcile] tolerance_by_category must be a table (JSON in the "
                              f"environment): {exc}") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{origin}: [reconcile] tolerance_by_category must be a table, got {value!r}")
    out: dict[str, dict[str, Any]] = {}
    for category, tol in value.items():
        if not isinstance(category, str) or not CATEGORY_RE.fullmatch(category):
            shown = _shown(category) if isinstance(category, str) else repr(category)
            raise ConfigError(f"{origin}: [reconcile] tolerance_by_category: a data category is ASCII "
                              f"letters, digits and _ (at most 63), got {shown}")
        where = f"{origin}: [reconcile] tolerance_by_category.{category}"
        if not isinstance(tol, dict) or not set(tol) <= {"abs", "rel"} or not tol:
            raise ConfigError(f"{where} must be a table with abs and/or rel, got {tol!r}")
        own: dict[str, Any] = {}
        if "abs" in tol:
            if isinstance(tol["abs"], bool) or not isinstance(tol["abs"], int) or tol["abs"] < 0:
                raise ConfigError(f"{where}.abs must be an integer >= 0, got {tol['abs']!r}")
            own["abs"] = tol["abs"]
        if "rel" in tol:
            if not isinstance(tol["rel"], str):
                raise ConfigError(f"{where}.rel must be a quoted decimal string, e.g. \"0.001\"")
            try:
                rel = Decimal(tol["rel"])
            except InvalidOperation as exc:
                raise ConfigError(f"{where}.rel is not a decimal: {tol['rel']!r}") from exc
            if not rel.is_finite() or rel < 0:
                raise ConfigError(f"{where}.rel must be >= 0, got {tol['rel']!r}")
            own["rel"] = rel
        out[category] = own
    return out


def find_config_file(explicit: str | Path | None = None) -> Path | None:
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        return p.resolve()
    env = os.environ.get("METERLINE_CONFIG")
    if env:
        p = Path(env)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p} (from METERLINE_CONFIG)")
        return p.resolve()
    p = Path.cwd() / CONFIG_FILE_NAME
    return p.resolve() if p.is_file() else None


def load_config(explicit: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    file = find_config_file(explicit)
    base_dir = file.parent if file else Path.cwd()
    values = {s: {k: d for k, (_, d) in keys.items()} for s, keys in SCHEMA.items()}
    if file:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: malformed TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read: {exc.strerror}") from exc
        for section, table in data.items():
            if section not in SCHEMA or not isinstance(table, dict):
                raise ConfigError(f"{file}: unknown section [{section}] (known: {', '.join(SCHEMA)})")
            for key, value in table.items():
                if (section, key) in SECRET_KEYS:
                    raise ConfigError(
                        f"{file}: [{section}] {key} is a secret: set it in the environment "
                        f"(METERLINE_{section.upper()}_{key.upper()}), not in the file"
                    )
                if key not in SCHEMA[section]:
                    raise ConfigError(f"{file}: unknown key [{section}] {key}")
                values[section][key] = _coerce(section, key, value, str(file))
    if "METERLINE_WAREHOUSE" in env:
        values["warehouse"]["url"] = _coerce("warehouse", "url", env["METERLINE_WAREHOUSE"], "METERLINE_WAREHOUSE")
    for section, keys in SCHEMA.items():
        for key in keys:
            name = f"METERLINE_{section.upper()}_{key.upper()}"
            if name in env:
                values[section][key] = _coerce(section, key, env[name], name)
    secrets = {}
    if env.get("METERLINE_SOURCES_STRIPE_API_KEY") or env.get("METERLINE_STRIPE_API_KEY"):
        secrets["stripe_api_key"] = env.get("METERLINE_SOURCES_STRIPE_API_KEY") or env.get(
            "METERLINE_STRIPE_API_KEY", ""
        )
    for section, key in sorted(SECRET_KEYS - {("sources", "stripe_api_key")}):
        if env.get(f"METERLINE_{section.upper()}_{key.upper()}"):
            secrets[f"{section}_{key}"] = env[f"METERLINE_{section.upper()}_{key.upper()}"]
    if values["sources"]["metering_format"] not in ("parquet", "csv"):
        raise ConfigError(
            f"[sources] metering_format must be \"parquet\" or \"csv\", "
            f"got {values['sources']['metering_format']!r}")
    if values["pipeline"]["chunk_rows"] < 1:
        raise ConfigError("[pipeline] chunk_rows must be at least 1")
    if JINJA_RE.search(values["warehouse"]["url"]):
        # meterline.dbt writes the URL's parts into dbt's profiles.yml, which dbt renders as Jinja
        raise ConfigError("[warehouse] url must not contain '{{', '{%' or '{#' (dbt would run it as a template)")
    for stage in STAGES:
        if JINJA_RE.search(values["warehouse"][f"{stage}_url"]):
            raise ConfigError(f"[warehouse] {stage}_url must not contain '{{{{', '{{%' or '{{#' "
                              "(dbt would run it as a template)")
    limit = values["warehouse"]["duckdb_memory_limit"]
    if limit.strip():
        match = MEMORY_RE.fullmatch(limit)
        if not match:
            raise ConfigError(f"[warehouse] duckdb_memory_limit must be a size such as \"3GiB\" or "
                              f"\"512MB\" (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), got {limit!r}")
        size = Decimal(match.group(1)) * MEMORY_UNITS[match.group(2).lower()]
        if size < MIN_DUCKDB_MEMORY:
            raise ConfigError(f"[warehouse] duckdb_memory_limit {limit!r} is below the smallest "
                              f"that works, 64MiB")
    cfg = Config(values=values, base_dir=base_dir, file=file, secrets=secrets)
    main = cfg.warehouse  # validate the URLs early, with a clear message
    for stage in STAGES:
        if not values["warehouse"][f"{stage}_url"]:
            continue
        login = cfg.warehouse_for(stage)
        if main.kind != "postgres" or login.kind != "postgres":
            raise ConfigError(f"[warehouse] {stage}_url: a login per stage needs a PostgreSQL warehouse "
                              "(url and the stage's URL both postgresql://)")
        if (login.host, login.port, login.dbname) != (main.host, main.port, main.dbname):
            raise ConfigError(f"[warehouse] {stage}_url must name the warehouse's database "
                              f"({main.host}:{main.port}/{main.dbname}) with another login, "
                              f"not {login.redacted()}")
    return cfg
