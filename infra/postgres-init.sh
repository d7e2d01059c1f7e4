#!/bin/sh
# The team stack's roles and databases, as `retrain stack up` makes them in its own cluster
# (retrain/stack/config.py ROLES, DATABASES; retrain/stack/provisioning.py ensure_roles_and_databases,
# ensure_ledger_tables):
# one role per holder, each with its own password (from infra/.env), scram-sha-256 only.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE ROLE prefect_server LOGIN PASSWORD '${PG_PREFECT_PASSWORD}';
CREATE ROLE mlflow_server LOGIN PASSWORD '${PG_MLFLOW_PASSWORD}';
CREATE ROLE retrain_worker LOGIN PASSWORD '${PG_WORKER_PASSWORD}';
CREATE ROLE retrain_people LOGIN PASSWORD '${PG_PEOPLE_PASSWORD}';
CREATE DATABASE retrain_prefect OWNER prefect_server;
CREATE DATABASE retrain_mlflow OWNER mlflow_server;
CREATE DATABASE retrain_mlflow_auth OWNER mlflow_server;
CREATE DATABASE retrain_ledger OWNER retrain_worker;
REVOKE ALL ON DATABASE retrain_prefect, retrain_mlflow, retrain_mlflow_auth, retrain_ledger FROM PUBLIC;
GRANT CONNECT ON DATABASE retrain_ledger TO retrain_people;
SQL
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname retrain_ledger <<SQL
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO retrain_worker;
GRANT USAGE ON SCHEMA public TO retrain_people;
ALTER DEFAULT PRIVILEGES FOR ROLE retrain_worker IN SCHEMA public GRANT SELECT ON TABLES TO retrain_people;
SQL
