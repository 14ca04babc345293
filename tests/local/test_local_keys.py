"""The local key store: values shown once, only hashes stored, 0600 files, revocation, concurrency."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest

from pipeline.local.keys import (
    KeyNotFound,
    KeyStoreError,
    KeyStoreView,
    create_key,
    find_key,
    hash_key,
    list_keys,
    revoke_key,
)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "secrets" / "local-keys.json"


def test_create_returns_an_api_gateway_shaped_key_and_stores_only_its_hash(store: Path) -> None:
    key_id, value = create_key("alice", store)
    assert len(value) == 40 and value.isalnum()
    assert len(key_id) == 10 and key_id.isalnum()
    text = store.read_text()
    assert value not in text
    assert hash_key(value) in text
    [record] = json.loads(text)["keys"]
    assert record["id"] == key_id and record["name"] == "alice" and record["enabled"] is True


def test_store_file_is_0600_and_a_new_directory_0700(store: Path) -> None:
    create_key("alice", store)
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700


def test_find_key_matches_only_the_right_value(store: Path) -> None:
    key_id, value = create_key("alice", store)
    create_key("bob", store)
    found = find_key(value, store)
    assert found is not None and found.id == key_id
    assert find_key(value[:-1] + ("A" if value[-1] != "A" else "B"), store) is None
    assert find_key("", store) is None


def test_revoke_disables_the_key_and_is_idempotent(store: Path) -> None:
    key_id, value = create_key("alice", store)
    revoked = revoke_key(key_id, store)
    assert revoked.enabled is False and revoked.revoked_at
    again = revoke_key(key_id, store)
    assert again.revoked_at == revoked.revoked_at
    found = find_key(value, store)
    assert found is not None and found.enabled is False
    with pytest.raises(KeyNotFound, match="nosuchkey"):
        revoke_key("nosuchkey", store)


def test_list_keys_never_exposes_a_value_or_hash_in_public_form(store: Path) -> None:
    _, value = create_key("alice", store)
    [record] = list_keys(store)
    public = record.public()
    assert "sha256" not in public and value not in json.dumps(public)


def test_concurrent_creates_lose_no_key(store: Path) -> None:
    ids: list[str] = []

    def make(n: int) -> None:
        ids.append(create_key(f"k{n}", store)[0])

    threads = [threading.Thread(target=make, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.id for r in list_keys(store)) == sorted(ids)


def test_a_corrupt_store_is_a_clear_error(store: Path) -> None:
    store.parent.mkdir(parents=True)
    store.write_text("{not json")
    with pytest.raises(KeyStoreError, match="cannot read the key store"):
        list_keys(store)
    store.write_text(json.dumps({"version": 99, "keys": []}))
    with pytest.raises(KeyStoreError, match="version-1"):
        list_keys(store)


def test_name_limits(store: Path) -> None:
    with pytest.raises(KeyStoreError, match="1-1024"):
        create_key("  ", store)


def test_view_sees_changes_made_by_another_writer(store: Path) -> None:
    view = KeyStoreView(store)
    assert view.lookup("anything") is None  # no file yet
    key_id, value = create_key("alice", store)
    assert view.lookup(value).id == key_id  # type: ignore[union-attr]
    revoke_key(key_id, store)
    assert view.lookup(value).enabled is False  # type: ignore[union-attr]
