"""Run a function right after a module is first imported, without importing it now.

The CLI imports Prefect only inside the commands that need it (``retrain --help`` stays instant), yet
some set-up must follow Prefect's own: patching its embedded server, adding a handler to loggers its
logging set-up configures (``dictConfig`` drops handlers added before it).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``then(module)`` once ``fullname`` has executed, then leaves the import system."""

    def __init__(self, fullname: str, then: Callable[[ModuleType], None]) -> None:
        self.fullname = fullname
        self.then = then

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.fullname:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader: Any = spec.loader
        execute = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            self.then(module)

        loader.exec_module = exec_module
        return spec


def after_import(fullname: str, then: Callable[[ModuleType], None]) -> None:
    """``then(module)`` now if ``fullname`` is loaded, else right after its first import (once)."""
    loaded = sys.modules.get(fullname)
    if loaded is not None:
        then(loaded)
    elif not any(isinstance(f, _AfterImport) and f.fullname == fullname for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(fullname, then))
