"""Prefect tasks: they call the domain and the adapters; retries, caching and timeouts live here."""
