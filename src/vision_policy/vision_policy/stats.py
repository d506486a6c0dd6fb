"""
The node's counters and timing statistics, and their /diagnostics key-value form. No ROS.

Every dropped or rejected input lands in a counter; per-stage times, image-to-command
latency and tick jitter are kept over the last ``WINDOW`` ticks.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, fields
from typing import Dict, List, Optional, Tuple

import numpy as np

from .core import STAGES

WINDOW = 1000  # samples kept for the percentiles


@dataclass
class Counters:
    """Counts reported on /diagnostics."""

    images_received: int = 0
    images_rejected: int = 0
    images_unused: int = 0       # preprocessed, then replaced before a tick used them
    images_superseded: int = 0   # replaced by a newer frame before preprocessing began
    joint_states_received: int = 0
    joint_states_rejected: int = 0
    extras_rejected: int = 0
    camera_infos_rejected: int = 0
    ticks: int = 0
    commands: int = 0
    holds: int = 0
    camera_skew_holds: int = 0
    nonfinite_observations: int = 0
    nonfinite_actions: int = 0
    term_failures: int = 0
    clock_jumps: int = 0
    estops: int = 0

    def items(self) -> List[Tuple[str, int]]:
        """Return (name, value) pairs in a fixed order."""
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


class Rate:
    """Arrival rate of a topic over its last samples (monotonic seconds)."""

    def __init__(self, window: int):
        self._stamps = collections.deque(maxlen=window)

    def add(self, t: float) -> None:
        """Record one arrival at monotonic time t."""
        self._stamps.append(t)

    def hz(self, now: float, stale: float = 2.0) -> float:
        """Return the rate in Hz, 0 when fewer than two samples or none for `stale` s."""
        s = self._stamps
        if len(s) < 2 or now - s[-1] > stale:
            return 0.0
        return (len(s) - 1) / (s[-1] - s[0])


class TickTimes:
    """Intervals between control ticks: jitter against the period and missed ticks."""

    def __init__(self, period: float):
        self.period = period
        self.missed = 0
        self._times = collections.deque(maxlen=WINDOW)

    def add(self, t: float) -> None:
        """Record a tick at perf_counter time t; a gap of > 1.5 periods counts as missed."""
        if self._times:
            interval = t - self._times[-1]
            if interval > 1.5 * self.period:
                self.missed += int(interval / self.period + 0.5) - 1
        self._times.append(t)

    def jitter(self) -> np.ndarray:
        """Return |interval - period| of the recent ticks, in s."""
        if len(self._times) < 2:
            return np.zeros(0)
        return np.abs(np.diff(np.asarray(self._times)) - self.period)


class NodeStats:
    """Everything the node reports besides its state."""

    def __init__(self):
        self.counters = Counters()
        self.rates = {'image': Rate(50), 'joint_states': Rate(200)}
        # The tick's stages, and the encoder of an encoder + actor card (per frame).
        self.stages: Dict[str, collections.deque] = {
            name: collections.deque(maxlen=WINDOW) for name in STAGES + ('encoder',)}
        self.latency = collections.deque(maxlen=WINDOW)
        self.ticks: Optional[TickTimes] = None

    def reset_timing(self, period: Optional[float]) -> None:
        """Start fresh timing windows (activation); period None: no control timer."""
        for window in self.stages.values():
            window.clear()
        self.latency.clear()
        self.ticks = TickTimes(period) if period else None

    def values(self, now_s: float) -> List[Tuple[str, str]]:
        """Return the /diagnostics key-value pairs: rates, percentiles, counters."""
        out = [(f'{name}_rate_hz', f'{rate.hz(now_s):.1f}') for name, rate in
               (('image', self.rates['image']), ('joint_state', self.rates['joint_states']))]
        series = [('latency_ms', self.latency)] + [
            (f'{name}_ms', data) for name, data in self.stages.items()]
        if self.ticks is not None:
            series.append(('tick_jitter_ms', self.ticks.jitter()))
            out.append(('missed_ticks', str(self.ticks.missed)))
        for label, data in series:
            if len(data):
                p50, p90, p99 = np.percentile(np.asarray(data) * 1e3, (50, 90, 99))
                out += [(f'{label}_p50', f'{p50:.3f}'), (f'{label}_p90', f'{p90:.3f}'),
                        (f'{label}_p99', f'{p99:.3f}')]
        out += [(k, str(v)) for k, v in self.counters.items()]
        return out
