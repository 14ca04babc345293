"""glibc heap settings (pipeline.heap): pinned mmap threshold, buffers handed back when freed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from pipeline.heap import pin_heap_thresholds, release_freed_memory

# A child process that frees 8 MB buffers of growing size, with or without the pinned threshold,
# and prints how much its RSS grew while it holds none of them.
_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from pipeline.heap import pin_heap_thresholds

    def rss_kib():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

    if sys.argv[1] == "pinned":
        assert pin_heap_thresholds()
    before = rss_kib()
    for size in range(8, 24):  # each freed block raises glibc's dynamic threshold past the next
        buffer = np.ones(size * 1024 * 1024 // 8)
        del buffer
        small = [np.ones(size * 1024 * 1024 // 8 // 4) for _ in range(3)]  # heap-sized, if unpinned
        del small
    print(rss_kib() - before)
    """
)


def _growth_kib(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def test_glibc_accepts_the_settings() -> None:
    assert pin_heap_thresholds() is True
    assert release_freed_memory() is True


def test_a_pinned_threshold_gives_freed_buffers_back() -> None:
    pinned, default = _growth_kib("pinned"), _growth_kib("default")
    assert pinned < 4 * 1024
    assert default > pinned + 8 * 1024  # glibc's default keeps them: what the pin is for


# A child process that allocates and frees a 600 KB block (under the mmap threshold, so from the
# heap's top) 200 times and prints how many pages it faulted in meanwhile.
_CHURN = textwrap.dedent(
    """
    import ctypes, resource, sys
    import numpy as np
    from pipeline.heap import MMAP_THRESHOLD_BYTES, pin_heap_thresholds

    if sys.argv[1] == "pinned":
        assert pin_heap_thresholds()
    else:  # the mmap threshold alone, as before the trim threshold was pinned too
        assert ctypes.CDLL("libc.so.6").mallopt(-3, MMAP_THRESHOLD_BYTES) == 1
    for _ in range(5):
        block = np.ones(600 * 1024 // 8)
        del block
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(200):
        block = np.ones(600 * 1024 // 8)
        del block
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def test_pinned_thresholds_keep_freed_heap_pages_for_the_next_call() -> None:
    """Pinning the mmap threshold alone leaves glibc's trim threshold at 128 KiB: every freed block
    at the top of the heap goes back to the OS and is faulted in again by the next allocation."""

    def faults(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, check=True)
        return int(out.stdout.strip())

    pinned, mmap_only = faults("pinned"), faults("mmap-only")
    assert pinned < 1_000
    assert mmap_only > 10_000  # ~150 pages a round
