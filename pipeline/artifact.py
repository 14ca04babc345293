"""The model artifact: the contents of ``/opt/ml/model`` and of ``model.tar.gz``.

Layout (files at the root, as SageMaker's training job leaves them)::

    model.joblib        the fitted scikit-learn Pipeline (preprocessing + classifier)
    manifest.json       what the model is, how it was made, checksums of the other files
    model_card.md       the human-readable model card
    model.onnx          the same pipeline as an ONNX graph (when it passed the parity gate)
    scoring_tables.bin  the graph's trees compiled into lookup tables (pipeline.table_scoring),
                        proven equal to the graph; the server reads them instead of compiling

Writing is atomic (a temporary directory, then rename), so a failed run never leaves a
half-written model directory. Loading checks the manifest's SHA-256 of ``model.joblib`` *before*
unpickling it (a pickle runs code when loaded) and refuses a scikit-learn version other than the one
that trained it (pickles are only supported within one version).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from pipeline.checksums import file_sha256
from pipeline.schema import Schema

if TYPE_CHECKING:
    import tarfile

FORMAT_VERSION = 1
MODEL_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
CARD_FILE = "model_card.md"
ONNX_FILE = "model.onnx"  # optional: present when the ONNX export passed its parity gate
TABLES_FILE = "scoring_tables.bin"  # optional: present when the graph's trees compiled into tables
ARTIFACT_FILES = (MODEL_FILE, MANIFEST_FILE, CARD_FILE, ONNX_FILE, TABLES_FILE)
_OPTIONAL_FILES = (ONNX_FILE, TABLES_FILE)
# Fixed tar entry time (1980-01-01, the earliest zip time; 0 upsets some tools): with sorted entries,
# fixed owners and gzip mtime 0 the same model directory always gives the same model.tar.gz bytes.
TAR_MTIME = 315_532_800


class ArtifactError(Exception):
    """The artifact cannot be written, read or trusted; the message says why."""


class ArtifactNotFoundError(ArtifactError):
    """The model directory or one of its files does not exist."""


class ManifestError(ArtifactError):
    """``manifest.json`` is unreadable, incomplete or of an unsupported format version."""


class ChecksumMismatchError(ArtifactError):
    """A file's SHA-256 differs from the manifest's: corrupt or tampered with."""


class VersionMismatchError(ArtifactError):
    """The artifact was made with a different scikit-learn version than the one installed."""


class ArtifactExistsError(ArtifactError):
    """The destination already holds something that writing would destroy."""


class UnsafeArchiveError(ArtifactError):
    """A tar archive has entries that would land outside the extraction directory (or are devices)."""


@dataclass(frozen=True)
class Artifact:
    """A loaded, verified model: the fitted pipeline and what the manifest says about it."""

    pipeline: Any
    manifest: dict[str, Any]
    schema: Schema
    threshold: float
    model_dir: Path


def write_artifact(
    model_dir: Path,
    pipeline: Any,
    manifest: dict[str, Any],
    model_card: str,
    *,
    overwrite: bool = False,
    onnx_model: bytes | None = None,
    scoring_tables: bytes | None = None,
) -> dict[str, Any]:
    """Write ``pipeline``, the model card and the completed manifest to ``model_dir`` atomically.

    ``onnx_model`` (the graph that passed :mod:`pipeline.onnx_export`'s parity gate) is written as
    ``model.onnx`` and checksummed like the other files; without it no ``model.onnx`` is left behind.
    ``scoring_tables`` (:func:`pipeline.table_scoring.export_tables` of that graph) likewise.

    The manifest gets ``format_version`` and ``artifact_files`` (SHA-256 of the other files) added;
    the completed manifest is returned. ``model_dir`` may not exist yet, or be empty (such as
    ``/opt/ml/model``); with ``overwrite=True`` it may hold a previous artifact (and nothing else).
    """
    import joblib

    model_dir = Path(model_dir)
    check_destination(model_dir, overwrite)
    staging = _staging_dir(model_dir)
    try:
        # compress=3: a third of the size, still deterministic (zlib), loads in milliseconds.
        joblib.dump(pipeline, staging / MODEL_FILE, compress=3)
        (staging / CARD_FILE).write_text(model_card, encoding="utf-8")
        files = [MODEL_FILE, CARD_FILE]
        for name, content in ((ONNX_FILE, onnx_model), (TABLES_FILE, scoring_tables)):
            if content is not None:
                (staging / name).write_bytes(content)
                files.append(name)
        completed = {"format_version": FORMAT_VERSION, **manifest}
        completed["artifact_files"] = {name: file_sha256(staging / name) for name in files}
        (staging / MANIFEST_FILE).write_text(dump_manifest(completed), encoding="utf-8")
        _install(staging, model_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return completed


def dump_manifest(manifest: dict[str, Any]) -> str:
    """The manifest as stable, readable JSON text."""
    return json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def read_manifest(model_dir: Path) -> dict[str, Any]:
    """Parse ``manifest.json`` and check its format version and required fields (no checksums)."""
    path = Path(model_dir) / MANIFEST_FILE
    if not Path(model_dir).is_dir():
        raise ArtifactNotFoundError(f"model directory {model_dir} does not exist")
    if not path.is_file():
        raise ArtifactNotFoundError(f"{path} is missing: not a model directory (or an incomplete one)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{path} must hold a JSON object")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ManifestError(
            f"{path}: unsupported format_version {version!r} (this code reads version {FORMAT_VERSION})"
        )
    required = ("artifact_files", "schema", "threshold", "library_versions", "engine")
    absent = [key for key in required if key not in manifest]
    if absent:
        raise ManifestError(f"{path}: missing field(s) {', '.join(absent)}")
    return manifest


def verify_artifact(model_dir: Path) -> dict[str, Any]:
    """Check every file listed in the manifest against its SHA-256; return the manifest. Never unpickles."""
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    files = manifest["artifact_files"]
    if not isinstance(files, dict) or MODEL_FILE not in files:
        raise ManifestError(f"{model_dir / MANIFEST_FILE}: artifact_files must list {MODEL_FILE}")
    for name, expected in sorted(files.items()):
        path = model_dir / name
        if PurePosixPath(name).name != name or not path.is_file():
            raise ArtifactNotFoundError(f"{path} is listed in the manifest but missing")
        actual = file_sha256(path)
        if actual != expected:
            raise ChecksumMismatchError(
                f"{path}: SHA-256 {actual} does not match the manifest's {expected}; "
                "the file is corrupt or was modified, refusing to load it"
            )
    return manifest


def load_artifact(model_dir: Path) -> Artifact:
    """Verify and load a model directory; raises an :class:`ArtifactError` subclass on any mismatch."""
    import joblib
    import sklearn

    model_dir = Path(model_dir)
    manifest = verify_artifact(model_dir)
    trained_with = manifest["library_versions"].get("scikit-learn")
    if trained_with != sklearn.__version__:
        raise VersionMismatchError(
            f"{model_dir} was trained with scikit-learn {trained_with}, but {sklearn.__version__} is "
            f"installed; install scikit-learn=={trained_with} or retrain the model"
        )
    schema, threshold = schema_and_threshold(model_dir, manifest)
    try:
        pipeline = joblib.load(model_dir / MODEL_FILE)
    except Exception as exc:  # unpickling can fail in many ways; all mean "unusable artifact"
        raise ArtifactError(f"{model_dir / MODEL_FILE} could not be loaded: {exc}") from exc
    if not hasattr(pipeline, "predict_proba"):
        raise ArtifactError(f"{model_dir / MODEL_FILE} does not hold a classifier with predict_proba")
    return Artifact(
        pipeline=pipeline, manifest=manifest, schema=schema, threshold=threshold, model_dir=model_dir
    )


def schema_and_threshold(model_dir: Path, manifest: dict[str, Any]) -> tuple[Schema, float]:
    """The input schema and decision threshold a manifest declares (ManifestError if unusable)."""
    try:
        schema = Schema.from_dict(manifest["schema"])
        threshold = float(manifest["threshold"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"{model_dir / MANIFEST_FILE}: bad schema or threshold: {exc}") from None
    if not 0.0 <= threshold <= 1.0:
        raise ManifestError(f"{model_dir / MANIFEST_FILE}: threshold {threshold} is not in [0, 1]")
    return schema, threshold


def package_model(model_dir: Path, tar_path: Path) -> Path:
    """Verify ``model_dir`` and write it as a deterministic ``model.tar.gz`` (files at the archive root).

    Entries are sorted, owned by 0/0 with mode 0644 and a fixed mtime; the gzip header has no name
    and mtime 0. The archive is written to a temporary file and renamed into place.
    """
    import gzip  # packaging only: the server's start-up does not import these
    import tarfile

    model_dir = Path(model_dir)
    tar_path = Path(tar_path)
    verify_artifact(model_dir)
    files = _regular_files(model_dir)
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=tar_path.parent, prefix=f".{tar_path.name}.", suffix=".tmp")
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar,
        ):
            for rel in files:
                data = (model_dir / rel).read_bytes()
                info = tarfile.TarInfo(rel)
                info.size = len(data)
                info.mtime = TAR_MTIME
                info.mode = 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; the archive is not a secret
        os.replace(tmp_name, tar_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return tar_path


def safe_extract(tar_path: Path, dest: Path) -> Path:
    """Extract ``tar_path`` into ``dest`` (created if absent; must be empty) after checking every entry.

    Refuses, before writing anything: absolute names, ``..`` components, symbolic or hard links
    whose target resolves outside ``dest``, and device/FIFO entries.
    """
    import tarfile

    tar_path = Path(tar_path)
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise ArtifactExistsError(f"extraction directory {dest} is not empty")
    try:
        tar = tarfile.open(tar_path, mode="r:*")  # noqa: SIM115 (closed by the with below)
    except (OSError, tarfile.TarError) as exc:
        raise ArtifactError(f"{tar_path} is not a readable tar archive: {exc}") from None
    with tar:
        try:
            members = tar.getmembers()
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise ArtifactError(f"{tar_path} is truncated or corrupt: {exc}") from None
        root = dest.resolve() if dest.exists() else dest.absolute()
        for member in members:
            _check_member(tar_path, member, root)
        dest.mkdir(parents=True, exist_ok=True)
        # filter="data" repeats the same checks inside tarfile (defence in depth) and drops
        # ownership and special permission bits.
        tar.extractall(dest, filter="data")
    return dest


def _check_member(tar_path: Path, member: tarfile.TarInfo, root: Path) -> None:
    name = member.name
    where = f"{tar_path}: entry {name!r}"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{where} has an absolute path")
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        raise UnsafeArchiveError(f"{where} contains '..'")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise UnsafeArchiveError(f"{where} is a device or FIFO")
    target = root / name
    if not _inside(root, target):
        raise UnsafeArchiveError(f"{where} resolves outside {root}")
    if member.issym():
        link = PurePosixPath(member.linkname)
        resolved = (target.parent / member.linkname) if not link.is_absolute() else Path(member.linkname)
        if not _inside(root, resolved):
            raise UnsafeArchiveError(f"{where} is a symbolic link to {member.linkname!r}, outside {root}")
    if member.islnk():
        link = PurePosixPath(member.linkname)
        if link.is_absolute() or not _inside(root, root / member.linkname):
            raise UnsafeArchiveError(f"{where} is a hard link to {member.linkname!r}, outside {root}")


def _inside(root: Path, path: Path) -> bool:
    resolved = Path(os.path.normpath(path))
    return resolved == root or root in resolved.parents


def _regular_files(model_dir: Path) -> list[str]:
    files = []
    for path in sorted(model_dir.rglob("*")):
        rel = path.relative_to(model_dir).as_posix()
        if path.is_symlink():
            raise ArtifactError(f"{path} is a symbolic link; a model directory holds regular files only")
        if path.is_file():
            files.append(rel)
    return sorted(files)


def check_destination(model_dir: Path, overwrite: bool) -> None:
    """Raise ArtifactExistsError unless ``model_dir`` is absent, empty, or (overwrite) an old artifact."""
    if model_dir.is_symlink() or (model_dir.exists() and not model_dir.is_dir()):
        raise ArtifactExistsError(f"{model_dir} exists and is not a directory")
    if not model_dir.exists():
        return
    entries = sorted(p.name for p in model_dir.iterdir())
    if not entries:
        return
    foreign = [e for e in entries if e not in ARTIFACT_FILES]
    if not overwrite or foreign:
        detail = f" (not artifact files: {', '.join(foreign)})" if foreign else ""
        raise ArtifactExistsError(
            f"{model_dir} is not empty{detail}; choose an empty or new directory"
            + ("" if foreign else ", or pass overwrite")
        )


def _staging_dir(model_dir: Path) -> Path:
    """A fresh directory next to ``model_dir`` (same file system, so the final rename is atomic)."""
    parent = model_dir.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    try:
        staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{model_dir.name}.tmp-"))
    except OSError:
        staging = Path(tempfile.mkdtemp(prefix="model.tmp-"))  # read-only parent: stage elsewhere
    # mkdtemp makes 0700; the renamed directory must be readable by a non-root serving user.
    staging.chmod(0o755)
    return staging


def _install(staging: Path, model_dir: Path) -> None:
    if not model_dir.exists():
        try:
            os.rename(staging, model_dir)
            return
        except OSError:
            model_dir.mkdir(parents=True)
    # An existing directory (a mount point such as /opt/ml/model cannot be replaced): drop the old
    # manifest first and move the new one in last, so at no moment does a manifest describe files
    # it does not match.
    with contextlib.suppress(FileNotFoundError):
        (model_dir / MANIFEST_FILE).unlink()
    for name in _OPTIONAL_FILES:  # a previous model's graph and tables must not outlive it
        with contextlib.suppress(FileNotFoundError):
            (model_dir / name).unlink()
    for name in (MODEL_FILE, CARD_FILE, *_OPTIONAL_FILES, MANIFEST_FILE):
        if (staging / name).exists():
            shutil.move(str(staging / name), str(model_dir / name))
