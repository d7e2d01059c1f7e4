"""Pure, typed domain code: no Prefect, MLflow, boto3, DVC or great-expectations import here.

Everything in this package can be unit-tested without a service running.
"""
