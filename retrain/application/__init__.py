"""Application layer: one plain function per use case, combining domain and adapters, with no Prefect import."""
