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


# What a release writes (``train --release model --reports docs/evaluation``). Changes there are the
# release itself, not an input to training, so they do not make a tree "dirty".
RELEASE_OUTPUTS = ("model/", "docs/evaluation/")


class DirtyTreeError(ValueError):
    """A release was asked for from a checkout whose tracked files differ from its commit."""


def uncommitted_changes(repo: Path | None = None) -> list[str] | None:
    """Tracked files that differ from HEAD (outside RELEASE_OUTPUTS), or None outside a git checkout.

    Untracked files are ignored: only files git knows can be part of the recorded commit.
    """
    repo = REPO_ROOT if repo is None else repo
    if not (repo / ".git").exists():
        return None
    try:
        status = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    # Porcelain v1: two status letters, a space, the path (``old -> new`` for renames).
    paths = [line[3:].split(" -> ")[-1] for line in status.splitlines() if line.strip()]
    return [path for path in paths if not path.startswith(RELEASE_OUTPUTS)]


def git_commit(repo: Path | None = None) -> str | None:
    """The checked-out commit (with ``+dirty`` if tracked files changed), or None outside a git checkout."""
    repo = REPO_ROOT if repo is None else repo
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
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if uncommitted_changes(repo) else commit


def require_clean_tree(repo: Path | None = None) -> str:
    """The commit a release is made from; DirtyTreeError if tracked files (outside RELEASE_OUTPUTS) changed.

    A release records the commit it was trained from, so that commit must hold exactly the code and
    data that made it: ``+dirty`` would make the released model unreproducible from the history.
    """
    repo = REPO_ROOT if repo is None else repo
    changed = uncommitted_changes(repo)
    if changed is None:
        raise DirtyTreeError(f"{repo} is not a git checkout; a release must be made from a clean commit")
    if changed:
        shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        raise DirtyTreeError(
            f"refusing to release from a tree with uncommitted changes to tracked files ({shown}); "
            "commit or stash them first (only model/ and docs/evaluation/, which the release "
            "rewrites, may differ)"
        )
    commit = git_commit(repo)
    if commit is None:
        raise DirtyTreeError(f"cannot read the git commit of {repo}")
    return commit


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
