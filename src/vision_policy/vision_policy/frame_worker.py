"""
A worker thread that handles the newest item of each key: camera frames off the control tick.

The node's image callback hands each frame to ``FrameWorker.submit`` and returns; the
worker preprocesses it while the control timer keeps its rate. A frame replaced by a newer
one of the same camera before the worker took it is never preprocessed, and is counted
(``superseded``): with the worker busy, only the newest frame is worth the time. No ROS.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Hashable


class FrameWorker:
    """One thread calling ``handle(key, item)`` for the newest pending item of each key."""

    def __init__(self, handle: Callable[[Hashable, Any], None], name: str = 'frame_worker'):
        self._handle = handle
        self._pending: Dict[Hashable, Any] = {}  # insertion order: oldest key first
        self._cond = threading.Condition()
        self._busy = False
        self._stopped = False
        self.superseded = 0   # items replaced before the worker took them
        self.failures = 0     # items whose handler raised (a bug: the input goes stale)
        self.last_failure = ''
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def native_id(self) -> int:
        """Return the worker thread's id in the operating system."""
        return self._thread.native_id

    def submit(self, key: Hashable, item: Any) -> bool:
        """Queue item as key's newest; False when it replaced one not yet handled."""
        with self._cond:
            if self._stopped:
                raise RuntimeError('FrameWorker.submit after stop()')
            replaced = self._pending.pop(key, None) is not None
            self.superseded += replaced
            self._pending[key] = item
            self._cond.notify()
        return not replaced

    def clear(self) -> int:
        """Drop every pending item (counted as superseded); return how many."""
        with self._cond:
            dropped = len(self._pending)
            self.superseded += dropped
            self._pending.clear()
        return dropped

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is pending or being handled; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    def stop(self, timeout: float = 2.0) -> None:
        """Finish the item being handled, drop the rest and end the thread."""
        with self._cond:
            self._stopped = True
            self._pending.clear()
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stopped)
                if self._stopped:
                    return
                key = next(iter(self._pending))
                item = self._pending.pop(key)
                self._busy = True
            try:
                self._handle(key, item)
            except Exception as exc:  # noqa: B902 (the thread must survive any handler bug)
                self.failures += 1
                self.last_failure = f'{type(exc).__name__}: {exc}'
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
