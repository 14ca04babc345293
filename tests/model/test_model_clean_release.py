"""A release comes from a clean, committed tree: ``train --release`` refuses otherwise, before training."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipeline import manifest as provenance
from pipeline.cli import main
from pipeline.manifest import DirtyTreeError, git_commit, require_clean_tree


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit holding code and a previous release."""
    root = tmp_path / "repo"
    (root / "pipeline").mkdir(parents=True)
    (root / "model").mkdir()
    (root / "docs" / "evaluation").mkdir(parents=True)
    (root / "pipeline" / "training.py").write_text("SEED = 42\n")
    (root / "model" / "manifest.json").write_text("{}\n")
    (root / "docs" / "evaluation" / "comparison.json").write_text("{}\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "init")
    return root


def test_a_clean_tree_gives_its_commit(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    assert require_clean_tree(repo) == head
    assert git_commit(repo) == head


def test_a_changed_tracked_file_is_refused_and_named(repo: Path) -> None:
    (repo / "pipeline" / "training.py").write_text("SEED = 43\n")
    with pytest.raises(DirtyTreeError, match=r"uncommitted changes .*pipeline/training\.py"):
        require_clean_tree(repo)
    assert git_commit(repo) == git(repo, "rev-parse", "HEAD") + "+dirty"


def test_a_staged_deletion_is_refused(repo: Path) -> None:
    git(repo, "rm", "-q", "pipeline/training.py")
    with pytest.raises(DirtyTreeError, match=r"pipeline/training\.py"):
        require_clean_tree(repo)


def test_the_releases_own_outputs_and_untracked_files_do_not_count(repo: Path) -> None:
    """Re-running a release rewrites model/ and docs/evaluation/; scratch files are not in the commit."""
    (repo / "model" / "manifest.json").write_text('{"new": 1}\n')
    (repo / "docs" / "evaluation" / "comparison.json").write_text('{"new": 1}\n')
    (repo / "notes.txt").write_text("scratch\n")
    assert require_clean_tree(repo) == git(repo, "rev-parse", "HEAD")


def test_outside_a_git_checkout_a_release_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DirtyTreeError, match="not a git checkout"):
        require_clean_tree(tmp_path)


def test_train_release_refuses_a_dirty_tree_before_training(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "pipeline" / "training.py").write_text("SEED = 43\n")
    monkeypatch.setattr(provenance, "REPO_ROOT", repo)
    out = tmp_path / "out"
    code = main(["train", "--quick", "--output", str(out), "--release", str(tmp_path / "release")])
    assert code == 1
    error = capsys.readouterr().err
    assert "refusing to release" in error and "pipeline/training.py" in error
    assert not out.exists() and not (tmp_path / "release").exists()  # refused before any work
