"""The local API key store: what the local gateway checks ``x-api-key`` against.

Keys mirror API Gateway's: an id (shown freely, used to revoke) and a 40-character alphanumeric value
(the secret, shown once when created). Only a SHA-256 of each value is stored, in
``$LOCAL_SECRETS_DIR/local-keys.json`` (directory 0700, file 0600), so the store never holds a usable
key. Updates take an exclusive lock and replace the file atomically, so the gateway (which re-reads
the file when it changes) never sees a half-written store.

Every key belongs to the one usage plan the deploy configuration describes, as in the cloud.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import string
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.local.settings import load_local_settings

KEY_VALUE_LENGTH = 40  # what API Gateway generates; it accepts 20-128 alphanumerics
_VALUE_ALPHABET = string.ascii_letters + string.digits
_ID_ALPHABET = string.ascii_lowercase + string.digits
STORE_VERSION = 1


class KeyStoreError(Exception):
    """The key store cannot be read or the request cannot be done (the message says why)."""


class KeyNotFound(KeyStoreError):
    """No key with the given id exists."""


@dataclass(frozen=True)
class KeyRecord:
    """One stored key: everything about it except its value."""

    id: str
    name: str
    sha256: str
    created_at: str
    enabled: bool = True
    revoked_at: str | None = None

    def public(self) -> dict[str, object]:
        """The fields safe to print (the hash is left out: it only helps guessing)."""
        return {k: v for k, v in asdict(self).items() if k != "sha256"}


def default_store_path() -> Path:
    """``$LOCAL_SECRETS_DIR/local-keys.json`` (default ``<repo>/.secrets/local-keys.json``)."""
    return load_local_settings().keys_file


def hash_key(value: str) -> str:
    """The hex SHA-256 of a key value: the only form in which a value is ever stored."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def create_key(name: str, store: Path | None = None) -> tuple[str, str]:
    """Create an enabled key called ``name``; returns ``(key_id, key_value)``.

    The value is returned exactly once and never stored; keep it (or lose the key and create another).
    """
    name = name.strip()
    if not 1 <= len(name) <= 1024:
        raise KeyStoreError("a key name must be 1-1024 characters (API Gateway's limit)")
    value = "".join(secrets.choice(_VALUE_ALPHABET) for _ in range(KEY_VALUE_LENGTH))
    with _locked(store) as path:
        records = _read(path)
        taken = {r.id for r in records}
        key_id = _new_id(taken)
        records.append(KeyRecord(key_id, name, hash_key(value), _now()))
        _write(path, records)
    return key_id, value


def list_keys(store: Path | None = None) -> list[KeyRecord]:
    """Every key, oldest first (revoked ones included, marked ``enabled=False``)."""
    return _read(store or default_store_path())


def revoke_key(key_id: str, store: Path | None = None) -> KeyRecord:
    """Disable the key ``key_id`` for good; revoking a revoked key is a no-op. Raises KeyNotFound."""
    with _locked(store) as path:
        records = _read(path)
        for index, record in enumerate(records):
            if record.id == key_id:
                if record.enabled:
                    record = KeyRecord(**{**asdict(record), "enabled": False, "revoked_at": _now()})
                    records[index] = record
                    _write(path, records)
                return record
    raise KeyNotFound(f"no API key with id {key_id!r} in {path}")


def find_key(value: str, store: Path | None = None) -> KeyRecord | None:
    """The key whose value is ``value`` (enabled or not), compared in constant time; None if unknown."""
    return match_key(value, _read(store or default_store_path()))


def match_key(value: str, records: list[KeyRecord]) -> KeyRecord | None:
    """The record matching ``value``; every record is compared, so timing does not reveal which."""
    digest = hash_key(value)
    found = None
    for record in records:
        if hmac.compare_digest(digest, record.sha256):
            found = record
    return found


class KeyStoreView:
    """A thread-safe, cached view of the store for the gateway; re-reads the file when it changes."""

    def __init__(self, store: Path) -> None:
        self.path = store
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._records: list[KeyRecord] = []

    def records(self) -> list[KeyRecord]:
        """The current records (read again only if the file's inode, size or mtime changed)."""
        try:
            st = self.path.stat()
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._records = _read(self.path) if stamp else []
                self._stamp = stamp
            return self._records

    def lookup(self, value: str) -> KeyRecord | None:
        """The record for a presented key value (enabled or not), or None."""
        return match_key(value, self.records())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _new_id(taken: set[str]) -> str:
    while True:
        key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))
        if key_id not in taken:
            return key_id


def _read(path: Path) -> list[KeyRecord]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise KeyStoreError(f"cannot read the key store {path}: {exc}") from None
    if not isinstance(document, dict) or document.get("version") != STORE_VERSION:
        raise KeyStoreError(f"{path} is not a version-{STORE_VERSION} key store")
    try:
        return [KeyRecord(**item) for item in document["keys"]]
    except (KeyError, TypeError) as exc:
        raise KeyStoreError(f"{path} has a malformed key record: {exc}") from None


def _write(path: Path, records: list[KeyRecord]) -> None:
    """Replace the store atomically with a 0600 file (never a moment with looser permissions)."""
    document = {"version": STORE_VERSION, "keys": [asdict(r) for r in records]}
    fd, tmp = tempfile.mkstemp(prefix=".local-keys.", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(store: Path | None) -> Iterator[Path]:
    """Hold the store's exclusive lock (a sibling lock file) and yield the store path."""
    path = store or default_store_path()
    # A new directory is private; an existing one is left as its owner set it (files are 0600 anyway).
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock_path = path.parent / f".{path.name}.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        os.close(fd)
