"""Per-face timing in the heap state of a camera process: the C allocator's thresholds fixed.

glibc serves a block of 128 KiB or more with ``mmap`` and gives it back with ``munmap`` on
``free``; it raises that threshold to the largest such block freed (up to 32 MiB) and trims the
top of the heap once more than twice the threshold is free. In ``lfr-agent`` the first camera
frame freed (0.9 MiB at 640x480, 2.6 MiB at 720p) lifts the threshold above every per-face
array, so detection, alignment and embedding reuse heap pages and fault none. A process that
only ever sees 250x250 LFW photos keeps a low threshold, and each face's arrays come back as
fresh pages: 212 page faults per face for ``accurate`` and 112 for ``fast`` (measured on x86,
``models/README.md``), 2-5 % of the time per face there, a cost the agent never pays.

:func:`keep_freed_memory` fixes both thresholds (``mallopt``) so that a benchmark process is in
the agent's state from its first face; :data:`GLIBC_ENV` does the same for a child process (the
peer in ``models/evaluation/speed.py``) through the variables glibc reads at start-up. Where
the C library is not glibc (musl's ``mallopt`` does nothing) it reports False.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

# glibc malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Older glibc refuses an mmap threshold above 32 MiB on a 64-bit system (half its heap size),
# which is also where its own adaptation stops.
MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 64 << 20
GLIBC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD_BYTES),
    "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD_BYTES),
}


def keep_freed_memory(
    mmap_bytes: int = MMAP_THRESHOLD_BYTES, trim_bytes: int = TRIM_THRESHOLD_BYTES
) -> bool:
    """Ask the C allocator to serve blocks under ``mmap_bytes`` from the heap and keep up to
    ``trim_bytes`` of freed heap for reuse; True if it agreed to both."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        log.info("no mallopt in this C library: allocator thresholds left as they are")
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # Setting either threshold stops glibc adapting both, and a fixed default mmap threshold is
    # worse than the adaptive one: so the one an older glibc may refuse goes first, and the
    # trim threshold only if it was taken.
    ok = bool(mallopt(M_MMAP_THRESHOLD, mmap_bytes) == 1)
    ok = ok and bool(mallopt(M_TRIM_THRESHOLD, trim_bytes) == 1)
    if not ok:
        log.info("the C library refused the allocator thresholds: left as they are")
    return ok
