"""Identifiers from configuration are allow-listed or quoted: fuzzed.

Every configuration value that reaches SQL, and how it gets there:

  * `[sources] metering_schema`, `metering_table`, `billing_schema` -> the FROM target of the
    extract queries (ingest/readers.py `source_relation`): allow-listed at config load
    (meterline.config.IDENTIFIER_RE) *and* quoted (meterline.warehouse.quote_ident);
  * `[sources] metering_path` -> a SQL string literal in `read_parquet('...')` / `read_csv`
    (ingest/readers.py `sql_literal`): escaped; NUL refused at config load;
  * `[reconcile] tolerance_by_category` keys -> SQL string literals in dbt
    (macros/reconciliation.sql, through `Config.dbt_vars`): allow-listed (CATEGORY_RE);
    `tolerance_rel` -> a quoted decimal in the same macro: finite decimals only;
  * `[warehouse] url` -> dbt's profiles.yml, which dbt renders as Jinja: no Jinja delimiters.

Schema and table names of the warehouse itself (raw, ledger, marts...) are constants, not
settings; Great Expectations suite names are built from constants too.

What the tests prove, with hypothesis (deterministic: derandomize, no example database):
config loading either refuses a hostile value with a ConfigError naming the setting, or the value
is one the allow-list admits and the SQL built from it is one statement that touches exactly the
object it names (run in an in-memory DuckDB: nothing else is created or dropped).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.readers import Reader, source_relation, sql_literal
from ingest.sql_sources import BILLING_SNAPSHOTS, extract_billing, extract_metering
from meterline.config import CATEGORY_RE, IDENTIFIER_RE, IDENTIFIER_SETTINGS, Config, load_config
from meterline.dbt import DBT_PROJECT_DIR
from meterline.errors import ConfigError
from meterline.source_contract import BILLING_TABLES, METERING_TABLES
from meterline.warehouse import qualified, quote_ident

FUZZ = settings(max_examples=200, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# what an attacker (or a typo) puts into a name
PAYLOADS = [
    '"; DROP TABLE victim; --', "'; DROP TABLE victim; --", 'usage_hourly"; DROP TABLE victim; --',
    "Robert'); DROP TABLE students;--", "a;b", "a--b", "-- x", "/* x */", "x\x00y", "\x00", "",
    " ", "a b", '"', "'", "''", '""', "\\", "\\'", "?", "%s", "%(x)s", "{}", "{0}", ":p0", "$1",
    "a.b", "main.victim", "{{ 7 * 7 }}", "{% raw %}", "{# c #}", "é", "名前", "😀", "\u202e",
    "\ufeff", "e\u0301", "\r\n", "\t", "A" * 63, "A" * 64, "a" * 10_000, "usage_hourly", "_",
    "1abc", "ABC_def_9",
]
HOSTILE_CHARS = list("\";'-\x00 \\/*?%{}:.$\n\t") + ["é", "😀", "\u202e", "a", "Z", "_", "9"]

names = st.one_of(
    st.sampled_from(PAYLOADS),
    st.text(max_size=100),  # any Unicode (NUL, controls, RTL marks, emoji...)
    st.text(alphabet=st.sampled_from(HOSTILE_CHARS), max_size=80),
    st.builds(lambda a, b, c: a + b + c, st.sampled_from(PAYLOADS), st.text(max_size=10),
              st.sampled_from(PAYLOADS)),
    st.text(alphabet="abcXYZ_019", min_size=60, max_size=5_000),  # long
    st.from_regex(IDENTIFIER_RE, fullmatch=True),  # what the allow-list admits: those must work
)

# half hostile, half what the allow-list admits (so the accepted path runs often)
plain_names = st.from_regex(IDENTIFIER_RE, fullmatch=True)
maybe_names = st.booleans().flatmap(lambda hostile: names if hostile else plain_names)

SENTINEL_SCHEMA = "sentinel-7f3a"  # a name the allow-list cannot produce


def toml_string(value: str) -> str:
    """A TOML basic string holding exactly `value` (controls and DEL escaped as \\uXXXX)."""
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("identifier_fuzz")


@pytest.fixture(scope="module")
def shared() -> duckdb.DuckDBPyConnection:
    """One sentinel database for the tests that only run queries (cheaper than one per example)."""
    return sentinel_db()


def load(folder: Path, section: str, key: str, value: str, via: str) -> Config:
    """A config with one setting from the file or from the environment."""
    conf = folder / "meterline.toml"
    if via == "file":
        conf.write_text(f"[{section}]\n{key} = {toml_string(value)}\n", encoding="utf-8")
        return load_config(conf, env={})
    conf.write_text("", encoding="utf-8")
    return load_config(conf, env={f"METERLINE_{section.upper()}_{key.upper()}": value})


def sentinel_db() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"CREATE SCHEMA {quote_ident(SENTINEL_SCHEMA)}")
    con.execute(f"CREATE TABLE {qualified(SENTINEL_SCHEMA, 'victim')} (x INTEGER)")
    con.execute(f"INSERT INTO {qualified(SENTINEL_SCHEMA, 'victim')} VALUES (42)")
    return con


def user_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return sorted(con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall())


def assert_sentinel_intact(con: duckdb.DuckDBPyConnection) -> None:
    assert con.execute(f"SELECT x FROM {qualified(SENTINEL_SCHEMA, 'victim')}").fetchall() == [(42,)]


class FakeReader(Reader):
    """A SQL source positioned on `relation`, for building the extract queries."""

    kind = "duckdb"

    def __init__(self, relation: str):
        self.relation = relation


# ----------------------------------------------------------------------------- source names


@FUZZ
@given(setting=st.sampled_from(sorted(IDENTIFIER_SETTINGS)), value=names,
       via=st.sampled_from(["file", "env"]))
def test_a_source_name_setting_is_refused_or_a_plain_name(folder: Path, setting: tuple[str, str],
                                                           value: str, via: str) -> None:
    section, key = setting
    try:
        cfg = load(folder, section, key, value, via)
    except ConfigError as exc:
        assert f"[{section}] {key}" in str(exc)
        assert len(str(exc)) < 400  # a very long value is cut short in the message
        return
    assert cfg.get(section, key) == value
    assert IDENTIFIER_RE.fullmatch(value) or (value == "" and key.endswith("_schema"))


@FUZZ
@given(schema=maybe_names, table=maybe_names)
def test_an_accepted_metering_name_is_one_identifier_in_the_extract_query(
        folder: Path, schema: str, table: str) -> None:
    """The real extract query (ingest.sql_sources) against a table created under the fuzzed name:
    it reads that table and nothing else exists or disappeared afterwards."""
    conf = folder / "meterline.toml"
    conf.write_text("", encoding="utf-8")
    try:
        cfg = load_config(conf, env={"METERLINE_SOURCES_METERING_SCHEMA": schema,
                                     "METERLINE_SOURCES_METERING_TABLE": table})
    except ConfigError as exc:
        assert "[sources] metering_" in str(exc)
        return
    relation = source_relation(cfg, "metering", cfg.get("sources", "metering_table"))
    # the readers rewrite `?` for psycopg / SQLAlchemy: a name carries none of their syntax
    assert not set(relation) & set("?%{}:;'\x00-")
    con = sentinel_db()
    if schema:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
    cols = ", ".join(f"{quote_ident(c)} {t}" for c, t in METERING_TABLES["usage_hourly"])
    con.execute(f"CREATE TABLE {relation} ({cols})")
    con.execute(f"INSERT INTO {relation} (hour_start, updated_at, account_id, category, quantity) "
                "VALUES (TIMESTAMP '2026-10-01 05:00', TIMESTAMP '2026-10-01 06:00', 'a1', 'error', 3)")
    stream = extract_metering(cfg, dt.date(2026, 10, 1))["metering_usage_hourly"]
    sql, params = stream.build(FakeReader(relation))
    assert sql.count("?") == len(params)
    assert len(duckdb.extract_statements(sql)) == 1
    rows = con.execute(sql, params).fetchall()
    assert len(rows) == 1
    # DuckDB matches names case-insensitively: "MAIN" is the schema main
    assert sorted((s.lower(), t) for s, t in user_tables(con)) == sorted(
        [(SENTINEL_SCHEMA, "victim"), ((schema or "main").lower(), table)])
    assert_sentinel_intact(con)


@FUZZ
@given(schema=maybe_names)
def test_an_accepted_billing_schema_is_one_identifier_in_every_billing_query(folder: Path, schema: str) -> None:
    conf = folder / "meterline.toml"
    conf.write_text("", encoding="utf-8")
    try:
        cfg = load_config(conf, env={"METERLINE_SOURCES_BILLING_SCHEMA": schema})
    except ConfigError as exc:
        assert "[sources] billing_schema" in str(exc)
        return
    con = sentinel_db()
    if schema:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
    streams = extract_billing(cfg, dt.date(2026, 10, 1))
    for raw_table, src_table in [*BILLING_SNAPSHOTS.items(), ("billing_usage_counters", "usage_counters")]:
        relation = source_relation(cfg, "billing", src_table)
        cols = ", ".join(f"{quote_ident(c)} {t}" for c, t in BILLING_TABLES[src_table])
        con.execute(f"CREATE TABLE {relation} ({cols})")
        sql, params = streams[raw_table].build(FakeReader(relation))
        assert sql.count("?") == len(params)
        assert len(duckdb.extract_statements(sql)) == 1
        assert con.execute(sql, params).fetchall() == []
    made = [t for s, t in user_tables(con) if s != SENTINEL_SCHEMA]
    assert sorted(made) == sorted([*BILLING_SNAPSHOTS.values(), "usage_counters"])
    assert_sentinel_intact(con)


# ----------------------------------------------------------------------------- quoting itself


@FUZZ
@given(name=names)
def test_quote_ident_round_trips_any_name_through_duckdb(name: str) -> None:
    """Defence in depth: whatever the allow-list admits, quote_ident alone makes any text (but ""
    and NUL, which it refuses) one identifier naming exactly that table."""
    try:
        quoted = quote_ident(name)
    except ValueError:
        assert name == "" or "\x00" in name
        return
    con = sentinel_db()
    create = f"CREATE TABLE {quoted} (v VARCHAR)"
    assert len(duckdb.extract_statements(create)) == 1
    con.execute(create)
    con.execute(f"INSERT INTO {quoted} VALUES (?)", [name])
    assert con.execute(f"SELECT v FROM {quoted}").fetchall() == [(name,)]
    assert user_tables(con) == sorted([(SENTINEL_SCHEMA, "victim"), ("main", name)])
    # and as a schema name, through qualified()
    if name.lower() not in ("main", SENTINEL_SCHEMA, "information_schema", "pg_catalog", "temp"):
        con.execute(f"CREATE SCHEMA {quoted}")
        con.execute(f"CREATE TABLE {qualified(name, name)} (v VARCHAR)")
        con.execute(f"INSERT INTO {qualified(name, name)} SELECT v FROM {quoted}")
        assert con.execute(f"SELECT v FROM {qualified(name, name)}").fetchall() == [(name,)]
        con.execute(f"DROP TABLE {qualified(name, name)}")
        con.execute(f"DROP SCHEMA {quoted}")
    con.execute(f"DROP TABLE {quoted}")
    assert user_tables(con) == [(SENTINEL_SCHEMA, "victim")]
    assert_sentinel_intact(con)


# ----------------------------------------------------------------------------- file paths


@FUZZ
@given(path=names, fmt=st.sampled_from(["parquet", "csv"]))
def test_a_metering_path_is_one_string_literal(folder: Path, shared: duckdb.DuckDBPyConnection,
                                                path: str, fmt: str) -> None:
    conf = folder / "meterline.toml"
    conf.write_text("", encoding="utf-8")
    try:
        cfg = load_config(conf, env={"METERLINE_SOURCES_METERING_PATH": path,
                                     "METERLINE_SOURCES_METERING_FORMAT": fmt})
    except ConfigError as exc:
        assert "[sources] metering_path" in str(exc)
        assert "\x00" in path
        return
    assert cfg.get("sources", "metering_path") == path
    literal = sql_literal(path)
    con = shared
    # a `?` inside the literal is text, not a parameter
    sql = f"SELECT {literal} AS p, ? AS q"
    assert len(duckdb.extract_statements(sql)) == 1
    assert con.execute(sql, [7]).fetchall() == [(path, 7)]
    assert user_tables(con) == [(SENTINEL_SCHEMA, "victim")]


# ----------------------------------------------------------------------------- dbt vars


def render_tolerances(cfg: Config) -> tuple[str, str]:
    """macros/reconciliation.sql's tolerance expressions over a column `category`, rendered with
    the vars meterline passes dbt (JSON on the command line, read by dbt as YAML)."""
    dbt_vars = yaml.safe_load(json.dumps(cfg.dbt_vars(), sort_keys=True))
    env = jinja2.Environment(extensions=["jinja2.ext.do"])
    env.globals.update(var=lambda name, default=None: dbt_vars.get(name, default),
                       money_type=lambda: "decimal(38, 12)")
    macros = env.from_string((DBT_PROJECT_DIR / "macros" / "reconciliation.sql").read_text()).module
    return str(macros.usage_tolerance_abs("category")), str(macros.usage_tolerance_rel("category"))


tolerance = st.fixed_dictionaries({}, optional={
    "abs": st.integers(min_value=0, max_value=10**6),
    "rel": st.one_of(st.decimals(min_value=0, max_value=10, places=6).map(str),
                     st.sampled_from(["NaN", "Infinity", "-1", "1e5", "0.001'; --", "sNaN"])),
})


plain_tolerance = st.fixed_dictionaries(
    {"abs": st.integers(min_value=0, max_value=10**6)},
    optional={"rel": st.decimals(min_value=0, max_value=10, places=6).map(str)})
category_tables = st.booleans().flatmap(lambda hostile: st.dictionaries(
    names if hostile else st.from_regex(CATEGORY_RE, fullmatch=True),
    tolerance if hostile else plain_tolerance, min_size=1, max_size=3))


@FUZZ
@given(by_category=category_tables,
       via=st.sampled_from(["file", "env"]))
def test_tolerance_categories_are_refused_or_one_sql_literal(folder: Path, shared: duckdb.DuckDBPyConnection,
                                                             by_category: dict[str, Any], via: str) -> None:
    conf = folder / "meterline.toml"
    env: dict[str, str] = {}
    if via == "file":
        def inline(tol: dict[str, Any]) -> str:
            return ", ".join(f"{k} = {v}" if k == "abs" else f"{k} = {toml_string(v)}" for k, v in tol.items())

        body = ", ".join(f"{toml_string(cat)} = {{ {inline(tol)} }}" for cat, tol in by_category.items())
        conf.write_text(f"[reconcile]\ntolerance_by_category = {{ {body} }}\n", encoding="utf-8")
    else:
        conf.write_text("", encoding="utf-8")
        env["METERLINE_RECONCILE_TOLERANCE_BY_CATEGORY"] = json.dumps(by_category)
    try:
        cfg = load_config(conf, env=env)
    except ConfigError as exc:
        assert "tolerance_by_category" in str(exc)
        return
    assert set(cfg.get("reconcile", "tolerance_by_category")) == set(by_category)
    assert all(CATEGORY_RE.fullmatch(c) for c in by_category)
    abs_sql, rel_sql = render_tolerances(cfg)
    con = shared
    sql = f"SELECT {abs_sql} AS a, {rel_sql} AS r FROM (SELECT CAST(? AS VARCHAR) AS category)"
    assert len(duckdb.extract_statements(sql)) == 1
    for category in [*by_category, "zz_not_configured"]:
        want_abs, want_rel = cfg.tolerance(category)
        assert con.execute(sql, [category]).fetchall() == [(want_abs, want_rel)]
    assert user_tables(con) == [(SENTINEL_SCHEMA, "victim")]


@FUZZ
@given(value=st.one_of(names, st.sampled_from(["0.001", "NaN", "-Infinity", "1E+3", "0.5"])))
def test_tolerance_rel_is_refused_or_a_finite_decimal(folder: Path, value: str) -> None:
    conf = folder / "meterline.toml"
    conf.write_text("", encoding="utf-8")
    try:
        cfg = load_config(conf, env={"METERLINE_RECONCILE_TOLERANCE_REL": value})
    except ConfigError as exc:
        assert "[reconcile] tolerance_rel" in str(exc)
        return
    rel = cfg.get("reconcile", "tolerance_rel")
    assert rel.is_finite()
    assert set(str(rel)) <= set("0123456789.E+-")


@pytest.mark.parametrize("url", [
    "duckdb:///{{ env_var('HOME') }}/x.duckdb",
    "postgresql://h/{% if true %}db{% endif %}",
    "duckdb:///a{#c#}.duckdb",
])
@pytest.mark.parametrize("via", ["file", "env"])
def test_a_warehouse_url_with_jinja_is_refused(folder: Path, url: str, via: str) -> None:
    """dbt renders profiles.yml (meterline.dbt.profile_yaml, built from this URL) as Jinja."""
    with pytest.raises(ConfigError, match=r"\[warehouse\] url"):
        if via == "file":
            load(folder, "warehouse", "url", url, "file")
        else:
            (folder / "meterline.toml").write_text("", encoding="utf-8")
            load_config(folder / "meterline.toml", env={"METERLINE_WAREHOUSE": url})
