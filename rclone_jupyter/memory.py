"""Hand memory freed after a peak back to the system.

The start's peak (the bucket's listing parsed, filtered and compared, the data folder walked) and each
reconcile's listing are freed once done, but glibc's allocator keeps freed pages of its heap for reuse: RSS
stayed at the peak (issue 18, item 12). `malloc_trim` returns them; elsewhere than glibc it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _libc()


def give_back() -> None:
    """Collect cycles, then return the heap's free pages to the system (the supervisor, once the start is over;
    a syncer, after each reconcile)."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
