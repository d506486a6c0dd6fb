"""
The C heap under the camera frames: freed frames kept for the next ones, a pile-up given back.

Each camera frame is a buffer of its full size, taken from DDS, viewed and freed at camera
rate. glibc's defaults give such a buffer back to the system as soon as it is free: with a
1080p frame taken, preprocessed and freed in one callback, the next one page-faulted all
its 6 MB in again (4500 minor faults a frame; 63 % of a core instead of 24 % at 1080p60 on
the 2-core VM). ``keep_freed_frames`` makes the heap keep them.

The heap then settles at the free memory the node's frame cycle reuses (1080p60: 3.3
frames with trigger image, 4.4 on the timer). A stall that piles frames up leaves more
free, and resident, for good: one 1080p frame more after the node process was stopped for
0.3 s. ``HeapWatch`` gives that back, once, when it happens (there: RSS 284.8 -> 266.2 MB).
Trimming every second instead made the next frame fault its pages in on every trim, and
the control timer missed ticks (docs/performance.md, "What the node does per frame").
``mallopt`` and ``malloc_trim`` are glibc's: elsewhere they do nothing.
"""

from __future__ import annotations

import ctypes
import os
from typing import Callable, Optional

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def _libc_function(name: str):
    function = getattr(ctypes.CDLL(None), name, None)
    if function is not None:
        function.restype = ctypes.c_int
    return function


_MALLOPT = _libc_function('mallopt')
_MALLOC_TRIM = _libc_function('malloc_trim')
_STATM = {}   # the open /proc/self/statm and its pid; one pread per call
_PAGE = os.sysconf('SC_PAGE_SIZE') if hasattr(os, 'sysconf') else 4096


def keep_freed_frames(frame_bytes: int = 32 << 20) -> bool:
    """
    Serve buffers up to frame_bytes from the heap and let it keep four of them free.

    Returns False where the C library has no ``mallopt`` (not glibc).
    """
    if _MALLOPT is None:
        return False
    return bool(_MALLOPT(M_MMAP_THRESHOLD, int(frame_bytes))) and \
        bool(_MALLOPT(M_TRIM_THRESHOLD, int(4 * frame_bytes)))


def private_memory_bytes() -> Optional[int]:
    """
    Return this process's resident private memory (RssAnon; None without /proc).

    One ``pread`` of ``/proc/self/statm`` (resident minus shared pages): 11 us, 0.18 ms
    after a 33 ms sleep on the 2-core VM, where glibc's ``mallinfo2`` took 0.14 / 1.7 ms
    (up to 4.4 ms) walking the free chunks of a node's heap with its arenas locked.
    """
    if _STATM.get('pid') != os.getpid():  # first call, or a forked child: its own file
        _STATM['pid'] = os.getpid()
        try:
            _STATM['fd'] = os.open('/proc/self/statm', os.O_RDONLY)
        except OSError:
            _STATM['fd'] = None
    if _STATM['fd'] is None:
        return None
    fields = os.pread(_STATM['fd'], 256, 0).split()
    return (int(fields[1]) - int(fields[2])) * _PAGE


def trim_heap() -> None:
    """Give the heap's free pages back to the system (``malloc_trim``)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class HeapWatch:
    """
    Trim the heap once the private memory exceeds the steady state's by more than a margin.

    ``check`` runs once a second. Over the first ``settle`` checks after a start, a trim
    or a change of the frame size it learns the steady state: the most private memory
    seen. After that it trims when the private memory is more than ``margin`` above it, or
    half a frame if that is more: a pile-up adds whole frames, while the steady state
    varies by less. The next frames fault their pages in once, as at start-up, and the
    steady state is learned again (so memory that is in use, which a trim cannot return,
    costs one trim).
    """

    def __init__(self, settle: int = 30, margin: int = 2 << 20,
                 resident: Callable[[], Optional[int]] = private_memory_bytes,
                 trim: Callable[[], None] = trim_heap):
        self.settle = settle
        self.margin = margin
        self._resident, self._trim = resident, trim
        self.trims = 0
        self.private = None       # the last check's private bytes (None: not known here)
        self.steady = None        # the steady state's private bytes, once learned
        self._frame_bytes = 0
        self._checks = 0

    def check(self, frame_bytes: int = 0) -> bool:
        """Read the memory (frame_bytes: one frame of every camera); True if it trimmed."""
        self.private = self._resident()
        if self.private is None:
            return False
        if frame_bytes != self._frame_bytes:
            self._frame_bytes = frame_bytes
            self._learn_again()
        self._checks += 1
        if self._checks <= self.settle:
            self.steady = max(self.steady or 0, self.private)
            return False
        if self.private <= self.steady + max(self.margin, frame_bytes // 2):
            return False
        self._trim()
        self.trims += 1
        self._learn_again()
        return True

    def _learn_again(self) -> None:
        self._checks, self.steady = 0, None
