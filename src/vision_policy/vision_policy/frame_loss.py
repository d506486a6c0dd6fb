"""
Frames the node never saw: gaps in the camera's ``header.stamp`` sequence. No ROS types.

A camera stamps its frames at a steady period, so a frame lost in transport (or dropped
from a full subscription queue) shows as an interval between two received stamps of
about two or more periods. The period is measured from the stream itself: a low
percentile of the recent intervals, which stays at one period even when most frames are
lost (at 9 % delivery still about one interval in eleven is a single period), refined to
the median of each interval over its whole number of periods, and follows a camera that
changes its rate (one that slows down counts up to window + warmup frames as lost first).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class FrameLossConfig:
    """How the camera period is measured and what counts as a restart of the stream."""

    window: int = 300           # recent intervals the period is measured over
    warmup: int = 30            # intervals needed before the first period estimate
    percentile: float = 5.0     # of the window's intervals: the period estimate
    restart_s: float = 1.0      # a stamp this far behind the last one restarts the stream


class FrameLossCounter:
    """Counts frames missing between received camera stamps, against the measured period."""

    def __init__(self, config: FrameLossConfig = FrameLossConfig()):
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Forget the stream (clock jump, resolution change, re-activation)."""
        self.received = 0       # frames with a new, later stamp
        self.lost = 0           # frames counted missing in the gaps between them
        self.out_of_order = 0   # stamps equal to or slightly behind the last one
        self.restarts = 0       # stamps far behind the last one (a new stream)
        self._last: Optional[int] = None
        self._intervals = collections.deque(maxlen=self.config.window)
        self._pending: list = []    # intervals seen before the first period estimate
        self._period: Optional[float] = None
        self._since_update = 0

    @property
    def period_s(self) -> Optional[float]:
        """Return the measured camera period in seconds (None until measured)."""
        return None if self._period is None else self._period * 1e-9

    @property
    def loss_fraction(self) -> float:
        """Return lost / (lost + received); 0 before any frame."""
        total = self.lost + self.received
        return self.lost / total if total else 0.0

    def add(self, stamp_ns: int) -> int:
        """Account for one received frame's stamp; returns the frames missing before it."""
        last = self._last
        if last is not None and stamp_ns <= last:
            if last - stamp_ns > self.config.restart_s * 1e9:
                self.restarts += 1
                self._intervals.clear()
                self._pending.clear()
                self._period = None
                self._since_update = 0
                self._last = stamp_ns
                self.received += 1
            else:
                self.out_of_order += 1
            return 0
        self._last = stamp_ns
        self.received += 1
        if last is None:
            return 0
        interval = stamp_ns - last
        self._intervals.append(interval)
        if self._period is None:
            self._pending.append(interval)
            if len(self._intervals) < self.config.warmup:
                return 0
            self._update_period()
            missing = sum(self._missing(i) for i in self._pending)
            self._pending.clear()
        else:
            # The percentile moves slowly; re-measuring every `warmup` frames keeps a
            # frame's cost to a few microseconds.
            self._since_update += 1
            if self._since_update >= self.config.warmup:
                self._update_period()
            missing = self._missing(interval)
        self.lost += missing
        return missing

    def _update_period(self) -> None:
        self._since_update = 0
        intervals = np.asarray(self._intervals, dtype=np.float64)
        # An interval that occurred ('lower'), not one interpolated between two multiples.
        rough = float(np.percentile(intervals, self.config.percentile, method='lower'))
        # When almost every frame is lost even the low percentile can be two or three
        # periods; the period is the largest fraction of it that every interval is a whole
        # multiple of (with 2 T, the odd multiples of T fall half way).
        for divisor in (1, 2, 3, 4):
            ratio = intervals / (rough / divisor)
            if np.mean(np.abs(ratio - np.round(ratio)) < 0.25) >= 0.9:
                rough /= divisor
                break
        # The low percentile sits in the low tail of the jitter; an interval of one to three
        # periods divided by its whole number of periods is an unbiased sample of the
        # period (longer gaps would amplify the rough estimate's error into their count).
        multiples = np.round(intervals / rough)
        short = (multiples >= 1) & (multiples <= 3)
        self._period = float(np.median(intervals[short] / multiples[short])) if short.any() \
            else rough

    def _missing(self, interval: int) -> int:
        # 1.4 periods is a late frame, not a lost one; 1.6 periods is one frame missing.
        return max(0, int(round(interval / self._period)) - 1)
