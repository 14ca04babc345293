"""glibc heap settings shared by the serving workers and the batch runner: give large buffers back.

Both processes handle multi-megabyte buffers (a 6 MB request body, its masks and offsets). glibc
serves allocations over its mmap threshold with their own mapping, unmapped on free, but it raises
that threshold to the size of any such block freed (up to 32 MiB), after which the same buffers
come from the heap and their pages stay with the process. :func:`pin_heap_thresholds` pins the
threshold, so a process's memory follows what it holds; :func:`release_freed_memory`
(``malloc_trim``) hands back what the heap keeps anyway. Outside glibc both do nothing.
"""

from __future__ import annotations

import ctypes
from functools import cache
from typing import Any

MMAP_THRESHOLD_BYTES = 1024 * 1024
"""Allocations this large or larger get their own mapping, returned to the OS when freed. A
10,000-row request's arrays (~80 KB each) stay below it, so they still reuse heap memory."""
TRIM_THRESHOLD_BYTES = 8 * 1024 * 1024
"""Free memory at the top of the heap kept for the next allocations instead of returned at once."""
_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3


def pin_heap_thresholds(
    mmap_bytes: int = MMAP_THRESHOLD_BYTES, trim_bytes: int = TRIM_THRESHOLD_BYTES
) -> bool:
    """Pin glibc's mmap and trim thresholds; False where that is not possible.

    Pinning the mmap threshold also ends glibc's dynamic trim threshold, which then stays at its
    128 KiB default: every call that frees a few hundred KB at the top of the heap would hand the
    pages back and fault them in again on the next call (``tests/serving/test_heap.py`` counts the
    faults; the tree tables' chunked scoring ran several times slower for it). The trim threshold is
    therefore pinned as well, higher; large requests still end with :func:`release_freed_memory`.
    """
    mallopt = _libc_function("mallopt")
    return bool(
        mallopt is not None
        and mallopt(_M_MMAP_THRESHOLD, mmap_bytes) == 1
        and mallopt(_M_TRIM_THRESHOLD, trim_bytes) == 1
    )


def release_freed_memory() -> bool:
    """Return freed heap pages to the OS; False where the C library has no ``malloc_trim``."""
    trim = _libc_function("malloc_trim")
    if trim is None:
        return False
    trim(0)
    return True


@cache
def _libc_function(name: str) -> Any | None:
    # glibc's soname directly: ctypes.util.find_library would run ldconfig in a subprocess.
    try:
        return getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None
