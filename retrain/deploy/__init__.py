"""Faces: Prefect deployments of the flows, and the client that runs them on the team stack."""
