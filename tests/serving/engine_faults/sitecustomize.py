"""Test-only hook that breaks the serving engine on demand; production code knows nothing about it.

A test puts this directory on ``PYTHONPATH`` of a ``serve`` it starts. With
``SERVE_TEST_ENGINE_FAULT=<fault>`` (see ``engine_faults.FAULTS``), when ``inference.engine`` is first
imported, its ``load_engine`` is wrapped so the engine the server loads is broken that way; the real
readiness code (``inference.readiness``) then runs its real self-check on it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys

from engine_faults import FAULT_ENV, wrap_loader


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, fault: str) -> None:
        self.fault = fault

    def find_spec(self, fullname, path, target=None):
        if fullname != "inference.engine":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader, fault = spec.loader, self.fault
        original_exec = loader.exec_module

        def exec_module(module):
            original_exec(module)
            module.load_engine = wrap_loader(module.load_engine, fault)

        loader.exec_module = exec_module
        return spec


if os.environ.get(FAULT_ENV):
    sys.meta_path.insert(0, _Finder(os.environ[FAULT_ENV]))
