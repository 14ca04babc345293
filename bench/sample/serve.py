#!/usr/bin/env python3
"""FROZEN reference (issue 12): the AWS ``scikit_bring_your_own`` sample's stack on our model.

The classic launcher (``bench/classic/serve.py``: nginx -> unix socket -> gunicorn sync workers)
run on this directory's ``wsgi.py`` instead of the no-op app; ``nginx.conf`` is the classic one.
"""

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLASSIC = HERE.parent / "classic" / "serve.py"

if __name__ == "__main__":
    spec = importlib.util.spec_from_file_location("classic_serve", CLASSIC)
    assert spec is not None and spec.loader is not None
    classic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(classic)
    classic.HERE = HERE  # nginx.conf and the gunicorn app come from this directory
    sys.exit(classic.main())
