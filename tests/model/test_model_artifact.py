"""Artifact: atomic write, verified load (checksum first, version), deterministic tar, safe extract."""

from __future__ import annotations

import gzip
import io
import json
import pickle
import shutil
import tarfile
from pathlib import Path

import joblib
import numpy as np
import pytest

from pipeline.artifact import (
    ARTIFACT_FILES,
    CARD_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    TABLES_FILE,
    TAR_MTIME,
    ArtifactExistsError,
    ArtifactNotFoundError,
    ChecksumMismatchError,
    ManifestError,
    UnsafeArchiveError,
    VersionMismatchError,
    load_artifact,
    package_model,
    safe_extract,
    write_artifact,
)
from pipeline.checksums import file_sha256
from pipeline.data import load_test
from pipeline.manifest import stable_fields


@pytest.fixture
def model_copy(quick_model_dir: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "model"
    shutil.copytree(quick_model_dir, dest)
    return dest


def _manifest(model_dir: Path) -> dict:
    return json.loads((model_dir / MANIFEST_FILE).read_text())


def _write_manifest(model_dir: Path, manifest: dict) -> None:
    (model_dir / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_quick_artifact_has_the_sagemaker_layout_and_complete_manifest(quick_model_dir):
    # The quick model's deep trees need more table cells than the cap: no tables, and why.
    expected = sorted(name for name in ARTIFACT_FILES if name != TABLES_FILE)
    assert sorted(p.name for p in quick_model_dir.iterdir()) == expected
    manifest = _manifest(quick_model_dir)
    assert manifest["scoring_tables"]["reason"].startswith("not compiled: ")
    assert "cells" in manifest["scoring_tables"]["reason"]
    for key in (
        "format_version",
        "engine",
        "model",
        "threshold",
        "threshold_rule",
        "positive_label",
        "negative_label",
        "schema",
        "metrics",
        "library_versions",
        "python_version",
        "training",
        "artifact_files",
        "volatile",
    ):
        assert key in manifest, key
    # The ONNX export (pipeline/onnx_export.py) ships model.onnx only when its parity gate passed.
    assert manifest["engine"] == ("onnx" if "model.onnx" in manifest["artifact_files"] else "sklearn")
    assert manifest["positive_label"] == ">50K"
    assert manifest["training"]["mode"] == "quick"
    assert set(manifest["library_versions"]) >= {"scikit-learn", "numpy", "pandas", "scipy", "joblib"}
    assert set(manifest["volatile"]) >= {"created_utc", "git_commit", "durations_seconds"}
    assert manifest["artifact_files"][MODEL_FILE] == file_sha256(quick_model_dir / MODEL_FILE)
    assert manifest["artifact_files"][CARD_FILE] == file_sha256(quick_model_dir / CARD_FILE)
    train_sha = manifest["training"]["data"]["train"]["files"]["adult.data.gz"]
    assert len(train_sha) == 64
    assert 0.90 < manifest["metrics"]["test"]["roc_auc"] < 0.95


def test_round_trip_predicts_identically(quick_model_dir, tmp_path):
    artifact = load_artifact(quick_model_dir)
    test = load_test()
    before = artifact.pipeline.predict_proba(test.X)[:, 1]
    rewritten = write_artifact(
        tmp_path / "again", artifact.pipeline, stable_fields(artifact.manifest), "card\n"
    )
    again = load_artifact(tmp_path / "again")
    assert np.array_equal(again.pipeline.predict_proba(test.X)[:, 1], before)
    assert again.threshold == artifact.threshold == 0.5
    assert again.schema == artifact.schema
    assert rewritten["artifact_files"][CARD_FILE] == file_sha256(tmp_path / "again" / CARD_FILE)


def test_tampered_model_is_refused_before_unpickling(model_copy, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (model_copy / MODEL_FILE).write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(ChecksumMismatchError, match=r"model\.joblib: SHA-256 .* does not match"):
        load_artifact(model_copy)
    assert not marker.exists()


def test_single_flipped_byte_is_refused(model_copy):
    data = bytearray((model_copy / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (model_copy / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match="corrupt or was modified"):
        load_artifact(model_copy)


def test_other_sklearn_version_is_refused(model_copy):
    manifest = _manifest(model_copy)
    manifest["library_versions"]["scikit-learn"] = "0.24.2"
    _write_manifest(model_copy, manifest)
    with pytest.raises(
        VersionMismatchError, match=r"trained with scikit-learn 0\.24\.2, but .* is installed"
    ):
        load_artifact(model_copy)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda d: (d / MANIFEST_FILE).unlink(), ArtifactNotFoundError, "manifest.json is missing"),
        (lambda d: (d / MANIFEST_FILE).write_text("{not json"), ManifestError, "not valid JSON"),
        (lambda d: (d / MODEL_FILE).unlink(), ArtifactNotFoundError, "listed in the manifest but missing"),
        (
            lambda d: _write_manifest(d, {**_manifest(d), "format_version": 99}),
            ManifestError,
            "unsupported format_version 99",
        ),
        (
            lambda d: _write_manifest(d, {k: v for k, v in _manifest(d).items() if k != "threshold"}),
            ManifestError,
            "missing field",
        ),
        (lambda d: _write_manifest(d, {**_manifest(d), "threshold": 1.5}), ManifestError, "not in"),
    ],
    ids=["no-manifest", "bad-json", "no-model", "format-version", "no-threshold", "bad-threshold"],
)
def test_broken_artifacts_get_a_clear_error(model_copy, change, error, message):
    change(model_copy)
    with pytest.raises(error, match=message):
        load_artifact(model_copy)


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(ArtifactNotFoundError, match="does not exist"):
        load_artifact(tmp_path / "nope")


def test_write_refuses_a_non_empty_directory_and_leaves_no_temp(tmp_path, quick_model_dir):
    pipeline = load_artifact(quick_model_dir).pipeline
    target = tmp_path / "out"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(ArtifactExistsError, match=r"notes\.txt"):
        write_artifact(target, pipeline, {"schema": {}}, "card", overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_write_into_existing_empty_dir_like_opt_ml_model(tmp_path, quick_model_dir):
    artifact = load_artifact(quick_model_dir)
    target = tmp_path / "opt-ml-model"
    target.mkdir()
    write_artifact(target, artifact.pipeline, stable_fields(artifact.manifest), "card")
    assert load_artifact(target).threshold == artifact.threshold
    # A second write needs overwrite=True and then replaces the old artifact.
    with pytest.raises(ArtifactExistsError, match="pass overwrite"):
        write_artifact(target, artifact.pipeline, stable_fields(artifact.manifest), "card")
    write_artifact(target, artifact.pipeline, stable_fields(artifact.manifest), "card v2", overwrite=True)
    assert (target / CARD_FILE).read_text() == "card v2"
    load_artifact(target)


def test_failed_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(Exception, match="pickle"):
        write_artifact(target, lambda x: x, {"schema": {}}, "card")
    assert list(tmp_path.iterdir()) == []


def test_package_is_deterministic_with_sagemaker_layout(quick_model_dir, tmp_path):
    first = package_model(quick_model_dir, tmp_path / "a" / "model.tar.gz")
    second = package_model(quick_model_dir, tmp_path / "b" / "model.tar.gz")
    assert first.read_bytes() == second.read_bytes()
    raw = first.read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0
    with tarfile.open(first) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(name for name in ARTIFACT_FILES if name != TABLES_FILE)
    assert {(m.mtime, m.uid, m.gid, m.mode) for m in members} == {(TAR_MTIME, 0, 0, 0o644)}
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["model.tar.gz"]  # no temp file left
    extracted = safe_extract(first, tmp_path / "x")
    assert load_artifact(extracted).manifest == load_artifact(quick_model_dir).manifest


def test_package_refuses_a_tampered_directory(model_copy, tmp_path):
    (model_copy / CARD_FILE).write_text("edited")
    with pytest.raises(ChecksumMismatchError, match=r"model_card\.md"):
        package_model(model_copy, tmp_path / "model.tar.gz")
    assert not (tmp_path / "model.tar.gz").exists()


def _tar_with(path: Path, *members: tuple[tarfile.TarInfo, bytes | None]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ((_info("/etc/evil"), b"x"), "absolute path"),
        ((_info("../evil"), b"x"), "contains '..'"),
        ((_info("a/../../evil"), b"x"), "contains '..'"),
        ((_info("link", tarfile.SYMTYPE, "/etc/passwd"), None), "symbolic link"),
        ((_info("link", tarfile.SYMTYPE, "../../outside"), None), "symbolic link"),
        ((_info("hard", tarfile.LNKTYPE, "../outside"), None), "hard link"),
        ((_info("dev", tarfile.CHRTYPE), None), "device or FIFO"),
        ((_info("fifo", tarfile.FIFOTYPE), None), "device or FIFO"),
    ],
    ids=[
        "absolute",
        "dotdot",
        "nested-dotdot",
        "symlink-abs",
        "symlink-up",
        "hardlink-up",
        "chardev",
        "fifo",
    ],
)
def test_safe_extract_refuses_escaping_entries_before_writing(tmp_path, member, message):
    archive = _tar_with(tmp_path / "bad.tar.gz", (_info("model.joblib"), b"ok"), member)
    dest = tmp_path / "dest"
    with pytest.raises(UnsafeArchiveError, match=message):
        safe_extract(archive, dest)
    assert not dest.exists()  # nothing extracted, not even the harmless first entry
    assert not (tmp_path / "evil").exists()


def test_safe_extract_allows_links_inside_the_target(tmp_path):
    archive = _tar_with(
        tmp_path / "ok.tar.gz",
        (_info("sub/model.joblib"), b"ok"),
        (_info("alias", tarfile.SYMTYPE, "sub/model.joblib"), None),
    )
    dest = safe_extract(archive, tmp_path / "dest")
    assert (dest / "alias").read_bytes() == b"ok"


def test_safe_extract_refuses_garbage_and_non_empty_dest(tmp_path):
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(gzip.compress(b"not a tar file at all" * 10))
    with pytest.raises(Exception, match="tar"):
        safe_extract(garbage, tmp_path / "d1")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "x").write_text("x")
    ok = _tar_with(tmp_path / "ok.tar.gz", (_info("a"), b"a"))
    with pytest.raises(ArtifactExistsError, match="not empty"):
        safe_extract(ok, occupied)


def test_joblib_file_is_compressed_pipeline(quick_model_dir):
    pipeline = joblib.load(quick_model_dir / MODEL_FILE)
    assert [name for name, _ in pipeline.steps] == ["preprocess", "classify"]
