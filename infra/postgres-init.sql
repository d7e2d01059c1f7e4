-- The databases `retrain stack up` creates on the machine's PostgreSQL (retrain/stack.py DATABASES).
CREATE DATABASE retrain_prefect;
CREATE DATABASE retrain_mlflow;
CREATE DATABASE retrain_mlflow_auth;
CREATE DATABASE retrain_ledger;
