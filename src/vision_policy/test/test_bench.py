"""vision_policy_bench in its short mode: every phase runs over real DDS and reports figures."""

import json
import math
import mmap
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from vision_policy.tools import bench


def test_bench_short_mode(tmp_path, model_path, capsys):
    out = tmp_path / 'bench'
    rc = bench.main(['--model', str(model_path), '--ticks', '40', '--timer-ticks', '60',
                     '--ort-runs', '50', '--width', '320', '--height', '240', '--out', str(out),
                     '--stall-probe'])
    assert rc == 0
    res = json.loads((out / 'bench.json').read_text())
    assert (out / 'bench_latency.png').stat().st_size > 1000
    assert 0 < res['ort_floor_ms']['p50'] < 100
    for phase in ('echo', 'ours', 'baseline', 'timer'):
        r = res[phase]
        # The publisher starts once the subject subscribed: 40 ticks at 30 Hz, 60 at 50 Hz.
        assert r['sent'] >= 40, phase
        assert 0 <= r['frames_received'] <= r['sent'] + 1, phase
        assert r['frames_ratio'] == pytest.approx(r['frames_received'] / r['sent']), phase
        if phase != 'timer':
            # Best-effort delivery on a shared machine: most, not all, samples arrive.
            assert r['received'] >= 12, phase
            assert 0 < r['latency_ms']['p50'] < 1000, phase
    frames = [t for t in res['targets'] if 'frames received / sent' in t[0]]
    assert len(frames) == 4
    assert all(met == (float(value.split('= ')[1].rstrip(' %')) >= 99.9)
               for target, value, met in frames if target.startswith(('ours', 'timer')))
    assert res['ours']['cpu_percent_of_one_core'] > 0
    assert set(res['ours']['stages']) == set(bench.STAGES)
    assert res['ours']['stages']['inference']['p50'] > 0
    assert int(res['timer']['diagnostics']['commands']) > 0
    assert 0 < res['wake_us']['back_to_back'] and 0 < res['wake_us']['after_sleep']
    if sys.platform.startswith('linux'):
        assert all(res[p]['steal_ms'] >= 0 for p in ('echo', 'ours', 'baseline', 'timer'))
        probe = res['timer']['stall_probe']
        assert probe['cores'] == bench.probe_cpus() and probe['wakeups'] > 0
    if sys.platform.startswith('linux'):  # /proc/<pid>/status: RssAnon, RssShmem
        rss = res['ours']['rss_mb']
        assert math.isfinite(rss['growth_private']) and math.isfinite(rss['growth_shared'])
    assert 'targets:' in capsys.readouterr().out


def test_missed_ticks_are_paired_with_the_publishers_lateness_before_them():
    snapshots = [(100.0, {'missed_ticks': '0'}), (101.0, {'missed_ticks': '2'}),
                 (102.0, {'missed_ticks': '2'}), (103.0, {'missed_ticks': '3'})]
    late = [(99.5, 40.0), (100.5, 25.0), (100.9, 12.0)]  # the first is 1.5 s before 101
    assert bench.missed_tick_rises(snapshots, late) == [[1.0, 2, 40.0, None, None],
                                                        [3.0, 1, 0, None, None]]
    assert bench.missed_tick_rises([], late) == []
    # The steal time around each window: samples at or before t - 2 and at or after t.
    steal = [(98.5, 1.0), (99.5, 1.0), (100.5, 1.25), (101.5, 1.25), (102.5, 1.25)]
    rises = bench.missed_tick_rises(snapshots, late, steal)
    assert [r[3] for r in rises] == [250.0, None]  # no sample yet at or after 103
    assert [r[4] for r in rises] == [None, None]   # no stall probe ran
    stalls = [(99.9, 30.5, 0), (100.2, 12.0, 1), (102.5, 6.0, 1)]
    assert [r[4] for r in bench.missed_tick_rises(snapshots, late, steal, stalls)] == \
        [30.5, 6.0]
    assert [r[4] for r in bench.missed_tick_rises(snapshots, late, steal, [])] == [0, 0]


def test_stall_probes_are_merged_by_time():
    probes = [{'cpu': 0, 'fifo': True, 'wakeups': 100, 'late': [(5.0, 12.5)]},
              {'cpu': 1, 'fifo': False, 'wakeups': 90, 'late': [(2.0, 4.5), (6.0, 30.0)]}]
    merged = bench.stall_figures(probes)
    assert merged['late'] == [(2.0, 4.5, 1), (5.0, 12.5, 0), (6.0, 30.0, 1)]
    assert (merged['wakeups'], merged['over_10ms'], merged['worst_ms']) == (190, 2, 30.0)
    assert merged['cores'] == [0, 1] and not merged['fifo']
    assert bench.stall_figures([]) is None


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='core affinity is Linux')
def test_the_stall_probe_wakes_on_its_core_and_writes_on_sigint(tmp_path):
    out = tmp_path / 'probe.json'
    cpu = bench.probe_cpus()[-1]
    proc = subprocess.Popen(bench.ROLES + ['stall_probe', '--cpu', str(cpu), '--out',
                                           str(out)])
    try:
        deadline = time.monotonic() + 60
        status = Path(f'/proc/{proc.pid}/status')
        while f'Cpus_allowed_list:\t{cpu}\n' not in status.read_text():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    data = json.loads(out.read_text())
    assert data['cpu'] == cpu and data['wakeups'] >= 1
    assert all(ms > 4.0 for _, ms in data['late'])


def test_steal_time_is_read_from_the_machines_counters():
    stolen = bench.steal_seconds()
    if sys.platform.startswith('linux'):
        assert stolen >= 0.0 and bench.steal_seconds() >= stolen
    else:
        assert math.isnan(stolen)


def test_thread_split_groups_main_dds_and_the_rest():
    before = {10: ('python3', 1.0, 100, 1), 11: ('dds.shm.1', 0.5, 0, 0),
              12: ('python3', 0.0, 0, 0), 14: ('python3', 0.5, 0, 0)}
    after = {10: ('python3', 2.0, 300, 4), 11: ('dds.shm.1', 1.0, 0, 0),
             12: ('python3', 0.25, 4, 0),
             13: ('dds.ev.0', 0.25, 2, 1)}  # 13 started during the phase; 14 ended: not counted
    split = bench.thread_split(10, before, after, wall=2.0)
    assert split == {'main': {'cpu_percent': 50.0, 'minor_faults_per_s': 100.0,
                              'major_faults': 3},
                     'dds': {'cpu_percent': 37.5, 'minor_faults_per_s': 1.0, 'major_faults': 1},
                     'other': {'cpu_percent': 12.5, 'minor_faults_per_s': 2.0,
                               'major_faults': 0}}


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='/proc is Linux')
def test_thread_times_reads_each_threads_cpu_and_faults():
    """A thread named like DDS's burns CPU while the main thread touches fresh pages."""
    stop, named = threading.Event(), threading.Event()
    tid = {}

    def burn():
        tid['dds'] = threading.get_native_id()
        Path(f'/proc/self/task/{tid["dds"]}/comm').write_text('dds.bench_test')
        named.set()
        while not stop.is_set():
            sum(range(1000))
    thread = threading.Thread(target=burn)
    before = bench.thread_times(os.getpid())
    t0 = time.monotonic()
    thread.start()
    try:
        assert named.wait(60)
        pages = mmap.mmap(-1, 8 << 20)  # fresh anonymous memory: each page faults once
        pages.madvise(mmap.MADV_NOHUGEPAGE)  # (a huge page would take 512 pages at once)
        np.frombuffer(pages, dtype=np.uint8)[::mmap.PAGESIZE] = 1
        deadline = time.monotonic() + 120
        while bench.thread_times(os.getpid())[tid['dds']][1] < 0.3:
            assert time.monotonic() < deadline, 'the burning thread got no CPU'
            time.sleep(0.05)
        after = bench.thread_times(os.getpid())
    finally:
        stop.set()
        thread.join(60)
    wall = time.monotonic() - t0
    assert after[tid['dds']][0] == 'dds.bench_test' and tid['dds'] not in before
    split = bench.thread_split(os.getpid(), before, after, wall)
    assert split['dds']['cpu_percent'] * wall >= 30.0 - 1e-6  # 0.3 s
    assert split['main']['minor_faults_per_s'] * wall >= (8 << 20) // mmap.PAGESIZE
    pages.close()


def test_rss_growth_is_split_into_private_and_shared_memory():
    mb = 2 ** 20
    # A step at the sixth second: 4 MB private, 26 MB of a shared-memory segment.
    samples = [((100 + 30 * (i >= 5)) * mb, (60 + 4 * (i >= 5)) * mb,
                (20 + 26 * (i >= 5)) * mb) for i in range(10)]
    rss = bench.rss_figures(samples)
    assert (rss['growth'], rss['growth_private'], rss['growth_shared']) == (30, 4, 26)
    assert rss['growth_second_half'] == 0 and rss['max'] == 130
    assert len(rss['samples']) == 10


def test_node_params_reach_the_node_command():
    cmd = bench.node_command('m.onnx', 'image', 0.0, None, ('intra_op_threads:=2',
                                                            'max_image_age:=0.2'))
    args = cmd[cmd.index('--ros-args'):]
    assert 'intra_op_threads:=2' in args and 'max_image_age:=0.2' in args
    assert 'max_image_age:=0.5' not in args  # the bench's own value is replaced
    with pytest.raises(ValueError, match='expected name:=value'):
        bench.node_command('m.onnx', 'image', 0.0, None, ('intra_op_threads=2',))
