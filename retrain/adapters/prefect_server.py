"""The embedded Prefect server dies with the process that started it.

With no ``PREFECT_API_URL``, Prefect 3 starts a temporary API server as a subprocess
(``prefect.server.api.server.SubprocessASGIServer``: ``python -m uvicorn --factory
prefect.server.api.server:create_app``) and stops it from an ``atexit`` hook. A SIGKILLed CLI runs no
hook, so the server was orphaned, holding its port and SQLite database for ever.

:func:`guard_embedded_server` makes that subprocess start through :func:`create_app` here instead,
which builds Prefect's own app and adds a watchdog thread: when the parent pid disappears (the child
is re-parented), the server shuts itself down. A watchdog rather than ``PR_SET_PDEATHSIG``: the
kernel fires that signal when the *thread* that forked exits, and Prefect may start the server from
any short-lived worker thread. The patch is installed lazily, when Prefect imports its server module
(so commands that never start a server pay nothing), and only the start command changes.

The guarded server also stops printing tracebacks of a busy SQLite database: on a loaded machine its
own services and the flow's calls contend for the file, the API answers 503 and the client retries,
so the run goes on. Prefect already hides these from uvicorn's log (``server.log_retryable_errors``),
but not the orchestration rules' ``logger.exception``, which put a 60-line traceback in the middle of
a demo that then passed. The same setting turns them back on.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from types import ModuleType
from typing import Any

from retrain.adapters.import_hooks import after_import

SERVER_MODULE = "prefect.server.api.server"
PREFECT_FACTORY = "prefect.server.api.server:create_app"
GUARDED_FACTORY = "retrain.adapters.prefect_server:create_app"
PARENT_ENV = "RETRAIN_EPHEMERAL_PARENT_PID"
#: How often the server looks for its parent; the orphan lives at most this long plus its shutdown.
WATCH_SECONDS = 1.0


def _patch(module: ModuleType) -> None:
    """Start the ephemeral server through the guarded factory, telling it which pid to outlive not."""
    server_class: Any = module.SubprocessASGIServer
    if getattr(server_class, "_retrain_guarded", False):
        return
    original = server_class._run_uvicorn_command
    popen = module.subprocess.Popen

    def run_guarded(self: Any) -> Any:
        def guarded_popen(*args: Any, **kwargs: Any) -> Any:
            command = list(kwargs.pop("args") if "args" in kwargs else args[0])
            if PREFECT_FACTORY not in command:  # another thread's process in this instant: untouched
                return popen(command, *args[1:], **kwargs)
            command[command.index(PREFECT_FACTORY)] = GUARDED_FACTORY
            env = {**(kwargs.pop("env", None) or os.environ), PARENT_ENV: str(os.getpid())}
            return popen(command, *args[1:], env=env, **kwargs)

        module.subprocess.Popen = guarded_popen
        try:
            return original(self)
        finally:
            module.subprocess.Popen = popen

    server_class._run_uvicorn_command = run_guarded
    server_class._retrain_guarded = True


def guard_embedded_server() -> None:
    """Make any ephemeral Prefect server this process starts die with it (no-op with PREFECT_API_URL)."""
    if os.environ.get("PREFECT_API_URL"):
        return
    after_import(SERVER_MODULE, _patch)


def _watch_parent(parent: int) -> None:
    """Shut the server down once ``parent`` is gone (SIGTERM: uvicorn closes the database cleanly)."""
    import signal

    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
    os._exit(1)  # uvicorn did not stop in time (e.g. still starting up)


class RetriedByClientFilter(logging.Filter):
    """Drops records of a busy SQLite database (SQLITE_BUSY, "database is locked"), which the API
    answers with 503 for the client to retry; any other error, database errors included, is kept.
    The same condition as Prefect's own filter on uvicorn's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None or not _sqlite_busy(error):
            return True
        from prefect.settings import get_current_settings

        return bool(get_current_settings().server.log_retryable_errors)


def _sqlite_busy(error: BaseException) -> bool:
    import sqlite3

    original = getattr(error, "orig", None)
    if not isinstance(original, sqlite3.OperationalError):
        return False
    busy = getattr(original, "sqlite_errorname", None) in {"SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT"}
    return busy or "database is locked" in original.args


def quiet_retried_errors() -> None:
    """Put :class:`RetriedByClientFilter` on every handler configured so far (root, ``prefect``, uvicorn)."""
    retried = RetriedByClientFilter()
    loggers = [
        logging.getLogger(),
        *(item for item in logging.Logger.manager.loggerDict.values() if isinstance(item, logging.Logger)),
    ]
    for handler in {handler for logger in loggers for handler in logger.handlers}:
        if not any(isinstance(existing, RetriedByClientFilter) for existing in handler.filters):
            handler.addFilter(retried)


def create_app() -> Any:
    """uvicorn factory of the guarded ephemeral server: Prefect's app plus the parent watchdog."""
    parent = int(os.environ.get(PARENT_ENV) or os.getppid())
    # Watch before the heavy import below: a parent killed during start-up is noticed too.
    threading.Thread(target=_watch_parent, args=(parent,), name="retrain-parent-watchdog", daemon=True).start()
    from prefect.server.api.server import create_app as prefect_app

    app = prefect_app()
    quiet_retried_errors()
    return app
