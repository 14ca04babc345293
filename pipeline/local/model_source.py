"""The model the local stack serves: the released artifact if there is one, otherwise a quick training.

The container mounts the directory read-only, as SageMaker mounts ``/opt/ml/model``. It is prepared
under the run directory and replaced atomically, so a half-extracted or half-trained model is never
served.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from pipeline.local.settings import REPO_ROOT

RELEASED_TARBALL = REPO_ROOT / "model" / "model.tar.gz"


def prepare_model_dir(
    run_dir: Path,
    tarball: Path = RELEASED_TARBALL,
    say: Callable[[str], None] = print,
) -> Path:
    """A model directory under ``run_dir``: ``tarball`` extracted, or a quick training if it is absent.

    An extraction is reused while the tarball is unchanged (its SHA-256 names the directory).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    if tarball.is_file():
        digest = hashlib.sha256(tarball.read_bytes()).hexdigest()[:12]
        target = run_dir / f"model-{digest}"
        if (target / "manifest.json").is_file():
            say(f"model: {tarball.relative_to(REPO_ROOT)} (already extracted to {target})")
            return target
        say(f"model: extracting the released {tarball.relative_to(REPO_ROOT)}")
        return _build(target, lambda tmp: _extract(tarball, tmp))
    target = run_dir / "model-quick"
    if (target / "manifest.json").is_file():
        say(f"model: no {tarball.relative_to(REPO_ROOT)}; reusing the quick-trained model in {target}")
        return target
    say(f"model: no {tarball.relative_to(REPO_ROOT)}; training a quick model (one fit, about a minute)")
    return _build(target, _quick_train)


def _extract(tarball: Path, dest: Path) -> None:
    from pipeline.artifact import safe_extract, verify_artifact

    safe_extract(tarball, dest)
    verify_artifact(dest)


def _quick_train(dest: Path) -> None:
    from pipeline.data import TEST_FILE, TRAIN_FILE
    from pipeline.training import TrainingConfig, train_to_directory

    train_to_directory([TRAIN_FILE], [TEST_FILE], TrainingConfig(quick=True), dest)


def _build(target: Path, make: Callable[[Path], None]) -> Path:
    """Run ``make(tmp)`` in a sibling temporary directory, then move it into place."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        make(tmp / "model")
        if target.exists():
            shutil.rmtree(target)
        (tmp / "model").rename(target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
    target.chmod(0o755)  # readable by the container's non-root nginx/gunicorn users, too
    return target
