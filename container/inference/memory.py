"""How a large request treats the worker's memory: no garbage collection during it, pages back after.

A 6 MiB batch allocates tens of MiB of short-lived Python objects. None of them form reference
cycles, but every collection the allocator triggers meanwhile walks the request's big lists again
(10-15 % of a 10,000-row request's CPU): :func:`garbage_collection_paused` defers collection to
the end of the request, when those lists are already gone.

Python frees the objects, but glibc keeps the freed pages in the worker's heap, so a worker that
once served a large batch would hold that peak for good (multiplied by the worker count).
:func:`pipeline.heap.release_freed_memory` (``malloc_trim(0)``, called by the app) returns them; it costs
well under a millisecond, so it runs only after large requests. Each worker also pins glibc's mmap
and trim thresholds (:func:`pipeline.heap.pin_heap_thresholds`, in ``gunicorn.conf.py``), so the
multi-MB buffers of a large request are unmapped when freed instead of joining the heap, while the
smaller working arrays of every request reuse the same heap pages.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

PAUSE_GC_FROM_BYTES = 64 * 1024
"""Request bodies at least this large (about 700 CSV rows) run without garbage collection."""
TRIM_FROM_BYTES = 2 * 1024 * 1024
"""Request bodies at least this large (about 20,000 CSV rows) are followed by a trim. Not smaller
ones: a trimmed heap is faulted back in (and zeroed) by the next request, which costs a 10,000-row
request ~15 % of its CPU; what a smaller request leaves behind is reused by the next one."""


@contextmanager
def garbage_collection_paused() -> Iterator[None]:
    """Run the block without cyclic garbage collection (restoring the previous state after)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
