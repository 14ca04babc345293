"""Give a large request's freed heap back to the operating system.

A 6 MiB batch allocates tens of MiB of short-lived Python objects and numpy buffers. Python frees
them, but glibc keeps the freed pages in the worker's heap, so a worker that once served a large
batch would hold that peak for good (multiplied by the worker count). ``malloc_trim(0)`` returns
them; it costs well under a millisecond, so it runs only after large requests.
"""

from __future__ import annotations

import ctypes
from functools import cache
from typing import Any

TRIM_AFTER_BYTES = 1024 * 1024
"""Request bodies at least this large are followed by a trim."""


def release_freed_memory() -> bool:
    """Return freed heap pages to the OS; False where the C library has no ``malloc_trim``."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@cache
def _malloc_trim() -> Any | None:
    # glibc's soname directly: ctypes.util.find_library would run ldconfig in a subprocess.
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
