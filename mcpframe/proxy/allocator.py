"""Let freed key tables go back to the system, so that the RSS follows the cache's accounting.

The cache's key table (the LRU ``OrderedDict``) is one big C array, reallocated whenever the
dict resizes, which under eviction churn happens every few hundred thousand stores (deleted
entries leave dummies until the dict rebuilds itself). glibc serves such arrays from its main
heap once its *dynamic* mmap threshold has risen past them, and a freed array in the middle
of the heap stays resident: measured with a 64 MB cache, over 20 MB of dead table memory on
top of the live data, for good.

``map_large_blocks(n)`` fixes glibc's mmap threshold at ``n`` bytes (``mallopt``), which also
stops its dynamic growth: every allocation of ``n`` bytes or more gets a mapping of its own,
returned to the system the moment it is freed. The server sets :data:`LARGE_BLOCK`, 512 KiB,
at start-up (``mcpframe serve``; a process-wide setting is not the sans-I/O store's to make,
so ``Cache()`` alone leaves the allocator as it is). Key tables of a
cache of more than ~20,000 items are larger, while the proxy's socket reads (256 KiB at most)
and ordinary values stay below it. A value over 512 KiB then costs one ``mmap`` when stored
and one ``munmap`` when dropped, small next to copying it (and the kernel's default limit of
65,530 mappings is only near past 30 GB of such values).

The setting is process-wide; after the first call, later calls only ever raise it. On a C
library without ``mallopt`` (musl, macOS) nothing changes and ``map_large_blocks`` returns
False.
"""

from __future__ import annotations

import ctypes
import sys

#: glibc's ``M_MMAP_THRESHOLD`` parameter number, and the largest value it accepts on 64-bit
#: builds (``HEAP_MAX_SIZE / 2``); below 128 KiB (its default) there is nothing to gain.
M_MMAP_THRESHOLD = -3
THRESHOLD_MIN = 128 * 1024
THRESHOLD_MAX = 32 * 1024 * 1024

#: The threshold the server sets at start-up.
LARGE_BLOCK = 512 * 1024

_threshold = 0  # what this process set, 0 = not set


def map_large_blocks(threshold: int) -> bool:
    """Serve allocations of at least ``threshold`` bytes with their own mapping (glibc only).

    Returns True when the threshold in force is now at least ``threshold`` (clamped to
    glibc's range). Calling it again with a smaller value keeps the larger one.
    """
    global _threshold
    threshold = min(max(threshold, THRESHOLD_MIN), THRESHOLD_MAX)
    if _threshold >= threshold:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if mallopt(M_MMAP_THRESHOLD, threshold) != 1:  # glibc returns 1 on success, musl 0
        return False
    _threshold = threshold
    return True
