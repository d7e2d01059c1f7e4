"""Errors that stop a run for a reason a user must act on (never retried)."""

from __future__ import annotations


class RetrainError(RuntimeError):
    """Base of Retrain's own, user-facing errors."""


class ContractViolation(RetrainError):
    """At least one batch broke its data contract; the message names every failed expectation."""


class NothingToRollBack(RetrainError):
    """A rollback was asked for, but there is no previous champion to go back to."""


class ApprovalConfigError(RetrainError):
    """Reviewer approval cannot work as configured (a listed reviewer without a readable public key)."""


class ApprovalInputError(RetrainError):
    """A reviewer's decision was refused (wrong run, unlisted reviewer, invalid input); the run stays paused."""


class DemoStepFailed(RetrainError):
    """A step of the demo did not do what the next steps rely on; the demo stops there."""


class ProjectNotServed(RetrainError):
    """A run named a project directory the worker was not set up to serve (team stack)."""
