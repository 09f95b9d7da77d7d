-- meterline's least-privilege PostgreSQL roles for the warehouse (issue 10): one NOLOGIN group
-- role per duty; people and services log in as LOGIN roles that are members of one of them.
--
--   psql -X -v ON_ERROR_STOP=1 -d meterline -f deploy/postgres-roles.sql \
--        -v ingest_login=etl_ingest -v dbt_login=etl_dbt -v ledger_login=etl_ledger \
--        -v reporting_login=finance_bi
--
-- Run it as a superuser (it creates roles and hands tables to them), connected to the warehouse
-- database (or name it with -v db=...). Every variable is optional:
--
--   ingest_role     meterline_ingest     writes raw (loads batches): creates and migrates raw
--   dbt_role        meterline_dbt        reads raw and ledger, builds its own schemas
--   ledger_role     meterline_ledger     meterline's bookkeeping: writes ledger, reads the rest
--   reporting_role  meterline_reporting  reads marts (and the seeds' reference tables)
--   ingest_login, dbt_login, ledger_login, reporting_login   existing LOGIN roles to make members
--                   of the group role, acting as it in this database (ALTER ROLE ... IN DATABASE
--                   ... SET role)
--   db              the warehouse database (default: the one psql is connected to)
--
-- meterline logs in as each with `[warehouse] ingest_url`, `dbt_url`, `ledger_url` and
-- `reporting_url` (or METERLINE_WAREHOUSE_INGEST_URL, ...): docs/airflow.md "PostgreSQL roles".
--
-- Rerunnable: roles and schemas are created when missing; tables already in the schemas are
-- handed to the role that owns their schema's data; a rerun takes back any wider grant made by
-- hand to these roles on these schemas before granting again.
--
-- What each role may do (tests/reliability/test_pg_roles.py proves each limit):
--   ingest     USAGE + CREATE on `raw`; owns its tables (ingest's `ensure_raw` creates and
--              migrates them). Nothing on ledger or dbt's schemas, no new schema, no temporary
--              table.
--   dbt        USAGE + CREATE on staging, intermediate, marts, seeds (the dbt output schemas:
--              dbt_project.yml's +schema, used as is by macros/generate_schema_name.sql) and
--              owns what it builds there; SELECT on raw and ledger (its sources), nothing else
--              there; TEMPORARY on the database (dbt's unit tests build temporary tables:
--              the pipeline's build leaves them out, `dbt build` by hand runs them).
--   ledger     USAGE + CREATE on `ledger`; owns its tables (meterline/ledger.py creates and
--              migrates them): reconciliation results, alerts, explanations, invoice versions,
--              the close's locks and frozen lines, voids, the Stripe outbox, the report log.
--              SELECT on raw and on dbt's schemas (what it checks, closes and pushes). It
--              writes nothing else, creates no schema and no temporary table.
--   reporting  USAGE on marts and SELECT on its tables, now and those dbt builds later (default
--              privileges: a dbt build replaces every table, so only those survive); the same
--              on seeds, because the finance reports read seeds.currencies (minor units, ISO
--              4217 reference data). Nothing else; no CREATE anywhere, no temporary table.
--   everyone   PUBLIC loses CONNECT and TEMPORARY on the database and CREATE on schema public.
--              The database owner and superusers keep theirs.
--
-- Logins must act as their group role (the *_login variables set that up): the objects they
-- create then belong to the group, so default privileges apply to them and the next login's
-- dbt build may replace them. A login that does not would own what it creates alone.
--
-- Do not apply it to a warehouse that one login runs (docker-compose's `meterline`) unless that
-- login is the database owner: it hands the tables to the roles.

\set ON_ERROR_STOP on
\if :{?ingest_role}
\else
  \set ingest_role meterline_ingest
\endif
\if :{?dbt_role}
\else
  \set dbt_role meterline_dbt
\endif
\if :{?ledger_role}
\else
  \set ledger_role meterline_ledger
\endif
\if :{?reporting_role}
\else
  \set reporting_role meterline_reporting
\endif
\if :{?db}
  \connect :"db"
\endif
SET client_min_messages = warning;
SELECT current_database() AS db \gset

-- the group roles: no login, nothing but the grants below
SELECT format('CREATE ROLE %I NOLOGIN', r)
FROM unnest(ARRAY[:'ingest_role', :'dbt_role', :'ledger_role', :'reporting_role']) AS r
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) \gexec
ALTER ROLE :"ingest_role" NOLOGIN;
ALTER ROLE :"dbt_role" NOLOGIN;
ALTER ROLE :"ledger_role" NOLOGIN;
ALTER ROLE :"reporting_role" NOLOGIN;

BEGIN;

-- the database: connect (and, for dbt, temporary tables) only through the roles
REVOKE ALL ON DATABASE :"db" FROM PUBLIC, :"ingest_role", :"dbt_role", :"ledger_role", :"reporting_role";
GRANT CONNECT ON DATABASE :"db" TO :"ingest_role", :"dbt_role", :"ledger_role", :"reporting_role";
GRANT TEMPORARY ON DATABASE :"db" TO :"dbt_role";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- the schemas, as ingest (raw, ledger) and dbt (the output schemas) name them
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS ledger;
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS intermediate;
CREATE SCHEMA IF NOT EXISTS marts;
CREATE SCHEMA IF NOT EXISTS seeds;
-- a schema's owner may grant on it and drop it with everything inside: never a stage role
SELECT format('ALTER SCHEMA %I OWNER TO %I', nspname, current_user)
FROM pg_catalog.pg_namespace
WHERE nspname IN ('raw', 'ledger', 'staging', 'intermediate', 'marts', 'seeds')
  AND pg_catalog.pg_get_userbyid(nspowner) IN (:'ingest_role', :'dbt_role', :'ledger_role', :'reporting_role')
\gexec

-- what is already there (a warehouse built before the roles) goes to the role that rebuilds it
SELECT format('ALTER %s %I.%I OWNER TO %I',
              CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                             WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
              n.nspname, c.relname,
              CASE n.nspname WHEN 'raw' THEN :'ingest_role' WHEN 'ledger' THEN :'ledger_role'
                             ELSE :'dbt_role' END)
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname IN ('raw', 'ledger', 'staging', 'intermediate', 'marts', 'seeds')
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND c.relowner <> (SELECT oid FROM pg_catalog.pg_roles
                     WHERE rolname = CASE n.nspname WHEN 'raw' THEN :'ingest_role'
                                                    WHEN 'ledger' THEN :'ledger_role'
                                                    ELSE :'dbt_role' END)
\gexec

-- start from nothing (a rerun undoes wider grants made by hand), owners excepted
REVOKE ALL ON SCHEMA raw, ledger, staging, intermediate, marts, seeds
    FROM :"ingest_role", :"dbt_role", :"ledger_role", :"reporting_role";
REVOKE ALL ON ALL TABLES IN SCHEMA raw FROM :"dbt_role", :"ledger_role", :"reporting_role";
REVOKE ALL ON ALL TABLES IN SCHEMA ledger FROM :"ingest_role", :"dbt_role", :"reporting_role";
REVOKE ALL ON ALL TABLES IN SCHEMA staging, intermediate, marts, seeds
    FROM :"ingest_role", :"ledger_role", :"reporting_role";

-- ingest: raw, which ensure_raw creates
GRANT USAGE, CREATE ON SCHEMA raw TO :"ingest_role";

-- dbt: reads its sources, builds its own schemas
GRANT USAGE ON SCHEMA raw, ledger TO :"dbt_role";
GRANT SELECT ON ALL TABLES IN SCHEMA raw, ledger TO :"dbt_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"ingest_role" IN SCHEMA raw
    GRANT SELECT ON TABLES TO :"dbt_role", :"ledger_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"ledger_role" IN SCHEMA ledger
    GRANT SELECT ON TABLES TO :"dbt_role";
GRANT USAGE, CREATE ON SCHEMA staging, intermediate, marts, seeds TO :"dbt_role";

-- ledger: its own schema; reads raw and what dbt builds
GRANT USAGE, CREATE ON SCHEMA ledger TO :"ledger_role";
GRANT USAGE ON SCHEMA raw, staging, intermediate, marts, seeds TO :"ledger_role";
GRANT SELECT ON ALL TABLES IN SCHEMA raw, staging, intermediate, marts, seeds TO :"ledger_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"dbt_role" IN SCHEMA staging, intermediate, marts, seeds
    GRANT SELECT ON TABLES TO :"ledger_role";

-- reporting: reads the marts (and the seeds' reference tables), today's and those built later
GRANT USAGE ON SCHEMA marts, seeds TO :"reporting_role";
GRANT SELECT ON ALL TABLES IN SCHEMA marts, seeds TO :"reporting_role";
ALTER DEFAULT PRIVILEGES FOR ROLE :"dbt_role" IN SCHEMA marts, seeds
    GRANT SELECT ON TABLES TO :"reporting_role";

COMMIT;

-- logins: members of their group role, acting as it in this database
\if :{?ingest_login}
  GRANT :"ingest_role" TO :"ingest_login";
  ALTER ROLE :"ingest_login" IN DATABASE :"db" SET role = :'ingest_role';
\endif
\if :{?dbt_login}
  GRANT :"dbt_role" TO :"dbt_login";
  ALTER ROLE :"dbt_login" IN DATABASE :"db" SET role = :'dbt_role';
\endif
\if :{?ledger_login}
  GRANT :"ledger_role" TO :"ledger_login";
  ALTER ROLE :"ledger_login" IN DATABASE :"db" SET role = :'ledger_role';
\endif
\if :{?reporting_login}
  GRANT :"reporting_role" TO :"reporting_login";
  ALTER ROLE :"reporting_login" IN DATABASE :"db" SET role = :'reporting_role';
\endif
