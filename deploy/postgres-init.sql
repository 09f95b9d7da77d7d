-- The warehouse database beside Airflow's metadata database (development only).
CREATE USER meterline WITH PASSWORD 'meterline';
CREATE DATABASE meterline OWNER meterline;
