"""``python -m retrain.cli``: the same command line as ``retrain``."""

from retrain.cli import app

app()
