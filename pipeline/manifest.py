"""Building ``manifest.json``: provenance, environment and the split between stable and volatile fields.

Everything outside the ``volatile`` section is a pure function of the code, the data, the library
versions and the training settings, so two runs of the same training can be compared with
:func:`stable_fields`. Times, the git commit and the host go in ``volatile``.
"""

from __future__ import annotations

import math
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

VOLATILE_KEY = "volatile"
LIBRARIES = ("scikit-learn", "numpy", "pandas", "scipy", "joblib", "threadpoolctl")
REPO_ROOT = Path(__file__).resolve().parent.parent


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries the pickle and its numbers depend on."""
    return {name: metadata.version(name) for name in LIBRARIES}


def python_version() -> str:
    return platform.python_version()


def git_commit(repo: Path = REPO_ROOT) -> str | None:
    """The checked-out commit (with ``+dirty`` if tracked files changed), or None outside a git checkout."""
    if not (repo / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit


def volatile_fields(durations: dict[str, float]) -> dict[str, Any]:
    """The fields that legitimately differ between two identical runs."""
    return {
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": git_commit(),
        "host": platform.node(),
        "durations_seconds": {k: round(v, 3) for k, v in durations.items()},
    }


def stable_fields(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest without its ``volatile`` section (what a reproduction must match exactly)."""
    return {k: v for k, v in manifest.items() if k != VOLATILE_KEY}


def json_ready(value: Any) -> Any:
    """Recursively turn NaN/inf into None and numpy scalars into Python ones, for strict JSON."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
