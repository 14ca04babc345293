"""Assertions about secrets that never print the secret, even when they fail."""

from __future__ import annotations

import hashlib


def assert_absent(secret: str, *texts: str) -> None:
    """``secret`` occurs in none of ``texts`` (the failure message names no value)."""
    leaked = any(secret in text for text in texts)
    assert not leaked, "a secret value appeared in the output"


def assert_same_secret(actual: str, expected: str) -> None:
    """Equal values, compared by digest so a mismatch does not print either value."""
    same = hashlib.sha256(actual.encode()).digest() == hashlib.sha256(expected.encode()).digest()
    assert same, "the stored secret differs from the key's value"


def assert_shown_once(secret: str, text: str) -> None:
    shown = text.count(secret)
    assert shown == 1, f"the secret value appeared {shown} times, expected exactly once"
