"""Thin adapters, one per outside system. Heavy imports stay inside the functions that need them."""
