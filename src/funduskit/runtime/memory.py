"""Process memory settings for long prediction runs.

glibc's ``malloc`` raises its mmap threshold each time a large block is freed (up to 32 MB on
64-bit), so after the first photograph the networks' activation buffers (tens of MB each) come
from the heap, where freed memory stays resident and fragments: the process keeps the first
photograph's peak and adds the next one's on top. A fixed threshold keeps every buffer of at
least :data:`MMAP_THRESHOLD_BYTES` in its own mapping, handed back to the system when freed.

Measured (``docs/performance.md``): ``funduskit predict --backend onnx`` with the report's
25-network ensemble, 4 photographs, peak resident memory 3071 MB -> 2669 MB; the ONNX Runtime
pipeline's time per photograph did not change (within the machine's noise). ``funduskit predict``
sets it for the ONNX Runtime backend only: eager PyTorch allocates every activation anew, and with
every large block a fresh mapping, each one page-faults in again: its networks ran 1.5-3x slower.
There is no library for this: ``mallopt`` is called through :mod:`ctypes`, and only on glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
import sys

#: Blocks this large or larger get their own mapping (glibc's starting value is 128 KiB).
MMAP_THRESHOLD_BYTES = 1 << 20
#: ``M_MMAP_THRESHOLD`` of glibc's ``<malloc.h>``.
_M_MMAP_THRESHOLD = -3


def return_freed_buffers_to_system(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold at ``threshold_bytes`` for this process (see the module doc).

    Returns:
        True when set; False where the C library is not glibc (macOS, Windows, musl), which is
        left as it is.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold_bytes)))


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB (``getrusage``'s ``ru_maxrss``: kilobytes on
    Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024
