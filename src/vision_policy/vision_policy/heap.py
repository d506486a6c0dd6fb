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
the control timer missed ticks (README, "What the node does per frame"). glibc only:
elsewhere both do nothing.
"""

from __future__ import annotations

import ctypes
from typing import Callable, Optional

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks',
        'fordblks', 'keepcost')]


def _libc_function(name: str, restype=ctypes.c_int):
    function = getattr(ctypes.CDLL(None), name, None)
    if function is not None:
        function.restype = restype
    return function


_MALLOPT = _libc_function('mallopt')
_MALLINFO2 = _libc_function('mallinfo2', _MallInfo2)   # glibc >= 2.33
_MALLOC_TRIM = _libc_function('malloc_trim')


def keep_freed_frames(frame_bytes: int = 32 << 20) -> bool:
    """
    Serve buffers up to frame_bytes from the heap and let it keep four of them free.

    Returns False where the C library has no ``mallopt`` (not glibc).
    """
    if _MALLOPT is None:
        return False
    return bool(_MALLOPT(M_MMAP_THRESHOLD, int(frame_bytes))) and \
        bool(_MALLOPT(M_TRIM_THRESHOLD, int(4 * frame_bytes)))


def heap_free_bytes() -> Optional[int]:
    """Return the free bytes held in the heap, all arenas (None: not glibc >= 2.33)."""
    return None if _MALLINFO2 is None else int(_MALLINFO2().fordblks)


def trim_heap() -> None:
    """Give the heap's free pages back to the system (``malloc_trim``)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class HeapWatch:
    """
    Trim the heap once its free memory exceeds the steady state's by more than a margin.

    ``check`` runs once a second. Over the first ``settle`` checks after a start, a trim
    or a change of the frame size it learns the steady state: the most free memory seen
    (the moment fewest frames are alive). After that it trims when the free memory is
    more than ``margin`` above it, or half a frame if that is more: a pile-up adds whole
    frames, while the steady state varies by less. The next frames fault
    their pages in once, as at start-up, and the steady state is learned again.
    """

    def __init__(self, settle: int = 30, margin: int = 2 << 20,
                 free_bytes: Callable[[], Optional[int]] = heap_free_bytes,
                 trim: Callable[[], None] = trim_heap):
        self.settle = settle
        self.margin = margin
        self._free_bytes, self._trim = free_bytes, trim
        self.trims = 0
        self.free = None          # the last check's free bytes (None: not known here)
        self.steady = None        # the steady state's free bytes, once learned
        self._frame_bytes = 0
        self._checks = 0

    def check(self, frame_bytes: int = 0) -> bool:
        """Read the heap (frame_bytes: one frame of every camera); True if it trimmed."""
        self.free = self._free_bytes()
        if self.free is None:
            return False
        if frame_bytes != self._frame_bytes:
            self._frame_bytes = frame_bytes
            self._learn_again()
        self._checks += 1
        if self._checks <= self.settle:
            self.steady = max(self.steady or 0, self.free)
            return False
        if self.free <= self.steady + max(self.margin, frame_bytes // 2):
            return False
        self._trim()
        self.trims += 1
        self._learn_again()
        return True

    def _learn_again(self) -> None:
        self._checks, self.steady = 0, None
