"""Test-only hook that makes scoring slow on demand; production code knows nothing about it.

The reliability tests put this directory on ``PYTHONPATH`` of a ``serve`` they start, so every Python
process of that tree imports it at start-up. It only acts when ``RELIABILITY_SLOW_SCORING=1``: then,
when ``inference.scoring`` is first imported (by the gunicorn master, before the app binds ``score``),
its ``score`` is wrapped so that each engine call sleeps for ``S`` seconds if a record of that chunk
has the categorical value ``test-sleep-S`` (an unknown category, which validation lets through).
The real chunk loop and deadline checks in ``inference.scoring`` still run unchanged.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
import time

SLEEP_PREFIX = "test-sleep-"


def _sleep_seconds(columns):
    longest = 0.0
    for values in columns.values():
        for value in values:
            if isinstance(value, str) and value.startswith(SLEEP_PREFIX):
                with contextlib.suppress(ValueError):
                    longest = max(longest, float(value[len(SLEEP_PREFIX) :]))
    return longest


class _SlowEngine:
    def __init__(self, engine):
        self._engine = engine

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def predict_proba(self, columns):
        seconds = _sleep_seconds(columns)
        if seconds:
            time.sleep(seconds)
        return self._engine.predict_proba(columns)


def _patch(module):
    real_score = module.score

    def score(engine, batch, deadline, chunk_rows):
        return real_score(_SlowEngine(engine), batch, deadline, chunk_rows)

    module.score = score


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != "inference.scoring":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original_exec = loader.exec_module

        def exec_module(module):
            original_exec(module)
            _patch(module)

        loader.exec_module = exec_module
        return spec


if os.environ.get("RELIABILITY_SLOW_SCORING") == "1":
    sys.meta_path.insert(0, _Finder())
