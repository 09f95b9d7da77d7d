#!/bin/sh
# The warehouse database beside Airflow's metadata database (development only). Run once by the
# postgres image on an empty data volume; the password comes from the compose environment.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE USER meterline WITH PASSWORD '${METERLINE_DB_PASSWORD}';
CREATE DATABASE meterline OWNER meterline;
SQL
