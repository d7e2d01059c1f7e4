"""One error hierarchy for everything Retrain raises on purpose.

Every error a user or operator may see derives from :class:`RetrainError`. Two class attributes
carry what the faces need, so nobody lists classes by name:

* ``exit_code``: what the CLI exits with (1: refused or failed; 2: bad input the user must fix;
  75, ``EX_TEMPFAIL``: a service failed in a way that may heal, try again).
* ``transient``: whether a Prefect task may retry it. Judgements (a contract violation, a refused
  gate, bad settings) give the same answer on every try; a dropped connection often heals in seconds.

Foreign exceptions (MLflow, botocore, DVC) are translated into these at the adapter that calls the
library, so the layers above never need to know the library's own classes.
"""

from __future__ import annotations

from typing import ClassVar


class RetrainError(RuntimeError):
    """Base of Retrain's own, user-facing errors: a refusal or failure the message explains."""

    exit_code: ClassVar[int] = 1
    transient: ClassVar[bool] = False


class InputError(RetrainError, ValueError):
    """The input (settings, data, a file, an option) is wrong: fixing it is the only way forward."""

    exit_code: ClassVar[int] = 2


class ServiceError(RetrainError):
    """An outside system (MLflow, S3, DVC's remote, a database) failed; retrying may help."""

    exit_code: ClassVar[int] = 75
    transient: ClassVar[bool] = True


class ContractViolation(RetrainError):
    """At least one batch broke its data contract; the message names every failed expectation."""


class NothingToRollBack(RetrainError):
    """A rollback was asked for, but there is no previous champion to go back to."""


class ApprovalConfigError(InputError):
    """Reviewer approval cannot work as configured (a listed reviewer without a readable public key)."""


class ApprovalInputError(InputError):
    """A reviewer's decision was refused (wrong run, unlisted reviewer, invalid input); the run stays paused."""


class DemoStepFailed(RetrainError):
    """A step of the demo did not do what the next steps rely on; the demo stops there."""


class ProjectNotServed(RetrainError):
    """A run named a project directory the worker was not set up to serve (team stack)."""


def is_transient(error: BaseException | None) -> bool:
    """Whether retrying the step that raised ``error`` may succeed.

    Retrain's own errors say so themselves; of the rest, only the operating system's I/O family
    (a refused connection, a timeout, a reset socket) is worth a retry. Anything else, a bug
    included, fails at once rather than three times.
    """
    if error is None:
        return False
    if isinstance(error, RetrainError):
        return error.transient
    if isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return False
    return isinstance(error, (ConnectionError, TimeoutError, OSError))
