"""The C heap under camera frames: freed frames reused, a pile-up given back (glibc)."""

import json
from pathlib import Path
import platform
import subprocess
import sys

import pytest

from vision_policy.heap import HeapWatch, private_memory_bytes

MB = 1 << 20

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != 'glibc',
                                reason=f'mallopt and malloc_trim are glibc only; this is '
                                       f'{platform.libc_ver()}')

FRAME_CYCLE = """
import resource, sys
import numpy as np
if sys.argv[1] == 'keep':
    from vision_policy.heap import keep_freed_frames
    assert keep_freed_frames()
n = 1920 * 1080 * 3
def frame():  # DDS's buffer, the bytes the callback gets, read, then both freed
    dds = np.ones(n, np.uint8)
    data = dds.tobytes()
    del dds
    np.frombuffer(data, np.uint8).sum()
for _ in range(5):
    frame()
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    frame()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / 50)
"""

# The steady frame cycle, then a stall's pile-up of four frames alive at once, with a small
# allocation made meanwhile, as the node's other work does.
PILE_UP = FRAME_CYCLE.split('for _ in range(5)')[0] + """
import json
from vision_policy.heap import HeapWatch
def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096
watch = HeapWatch(settle=5)
out = {}
for _ in range(20):
    frame()
    watch.check(n)
out['steady_rss'], out['steady_trims'] = rss(), watch.trims
pile = [np.ones(n, np.uint8).tobytes() for _ in range(4)]
small = [bytes(4096) for _ in range(100)]
del pile
out['piled_rss'] = rss()
frame()
out['trimmed'] = watch.check(n)
out['trimmed_rss'] = rss()
for _ in range(20):
    frame()
    watch.check(n)
out['after_rss'], out['trims'] = rss(), watch.trims
print(json.dumps(out))
"""


@glibc_only
def test_keep_freed_frames_reuses_the_pages_of_freed_1080p_frames():
    faults = {mode: float(subprocess.run([sys.executable, '-c', FRAME_CYCLE, mode],
                                         check=True, capture_output=True,
                                         text=True).stdout)
              for mode in ('default', 'keep')}
    print(f'\nminor page faults per 1080p frame: {faults}')
    # glibc's defaults fault a frame's 1519 pages in again for every frame (1984 here).
    assert faults['keep'] < 50, faults


@glibc_only
def test_a_pile_up_of_1080p_frames_is_given_back_once_and_the_steady_cycle_never():
    run = json.loads(subprocess.run([sys.executable, '-c', PILE_UP, 'keep'], check=True,
                                    capture_output=True, text=True).stdout)
    frame = 1920 * 1080 * 3
    sizes = ', '.join(f'{k} {v / MB:.1f}' for k, v in run.items() if k.endswith('rss'))
    print(f'\nRSS MB: {sizes}')
    assert run['steady_trims'] == 0
    # Four frames at once, one of them in the steady cycle's free memory: three more stay
    # resident without the watch (the precondition of this test).
    assert run['piled_rss'] - run['steady_rss'] > 2.5 * frame, run
    assert run['trimmed'], run
    assert run['trimmed_rss'] < run['steady_rss'] + frame, run
    # Back to the steady cycle: its memory is back, and it is not trimmed again.
    assert run['after_rss'] < run['steady_rss'] + 2 * MB, run
    assert run['trims'] == 1, run


class FakeHeap:

    def __init__(self):
        self.private, self.trims = 0, 0

    def trim(self):
        self.trims += 1
        self.private = 0


def watch_of(heap, settle=3):
    return HeapWatch(settle=settle, margin=2 * MB, resident=lambda: heap.private,
                     trim=heap.trim)


def test_the_steady_state_is_the_most_private_memory_seen_while_settling():
    heap = FakeHeap()
    watch = watch_of(heap)
    for private in (10 * MB, 16 * MB, 12 * MB):
        heap.private = private
        assert not watch.check(6 * MB)
    assert watch.steady == 16 * MB
    heap.private = 16 * MB + 3 * MB       # within half a frame (3 MB) of it: no trim
    assert not watch.check(6 * MB)
    heap.private += 1
    assert watch.check(6 * MB)
    assert heap.trims == watch.trims == 1


def test_after_a_trim_the_steady_state_is_learned_again():
    heap = FakeHeap()
    watch = watch_of(heap, settle=2)
    for private in (4 * MB, 4 * MB, 7 * MB):  # 3 MB over: more than the 2 MB margin
        heap.private = private
        watched = watch.check()
    assert watched and heap.private == 0
    # The heap grows back to its steady state (bigger than before, here): learned anew.
    for private in (2 * MB, 8 * MB):
        heap.private = private
        assert not watch.check()
    heap.private = 10 * MB
    assert not watch.check() and watch.steady == 8 * MB
    assert watch.trims == 1


def test_a_new_frame_size_starts_learning_again():
    heap = FakeHeap()
    watch = watch_of(heap, settle=2)
    heap.private = 4 * MB
    for _ in range(3):
        watch.check(1 * MB)
    heap.private = 30 * MB   # a 1080p camera replaced the VGA one: more frames' worth
    assert not watch.check(6 * MB) and not watch.check(6 * MB)
    assert watch.steady == 30 * MB and heap.trims == 0


def test_without_proc_the_watch_does_nothing():
    trims = []
    watch = HeapWatch(settle=0, resident=lambda: None, trim=lambda: trims.append(1))
    assert not any(watch.check(6 * MB) for _ in range(5))
    assert watch.private is None and not trims


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='/proc is Linux only')
def test_private_memory_is_the_resident_anonymous_memory():
    status = Path('/proc/self/status').read_text()
    anon = int(next(line for line in status.splitlines()
                    if line.startswith('RssAnon:')).split()[1]) * 1024
    # Both are read a moment apart; this test's own allocations move them by kilobytes.
    assert abs(private_memory_bytes() - anon) < 4 * MB
