"""
realtime_priority: the executor thread under SCHED_FIFO, everything else not.

Where this machine refuses SCHED_FIFO (no CAP_SYS_NICE, no rtprio limit), the node must say
so and run under the default scheduler; where it allows it, the executor's threads and the
frame worker run under it, and DDS's threads and those configure starts do not.
"""

import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time

import pytest
from rclpy.parameter import Parameter
from test_node import Rig  # noqa: I100 (test helper)
from vision_policy import realtime
from vision_policy.tools.bench import task_stats

pytestmark = pytest.mark.skipif(not sys.platform.startswith('linux'),
                                reason='SCHED_FIFO and /proc are Linux')


def in_thread(function):
    """Run function on a new thread (this one keeps its policy); return its result."""
    out = {}

    def run():
        try:
            out['value'] = function()
        except BaseException as exc:  # noqa: B902 (re-raised in the caller)
            out['error'] = exc
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if 'error' in out:
        raise out['error']
    return out['value']


def fifo_allowed() -> bool:
    """Whether this process may use SCHED_FIFO up to priority 10 (the most a test asks)."""
    def probe():
        try:
            realtime.use_fifo(10)
        except realtime.RealtimeError:
            return False
        return True
    return in_thread(probe)


def thread_policies(pid: int) -> dict:
    """{tid: (name, policy, priority)} of a process's threads (/proc/<pid>/task/*/stat)."""
    # Fields 40 and 41 of proc_pid_stat(5): rt_priority, policy.
    return {tid: (name, int(fields[38]), int(fields[37]))
            for tid, (name, fields) in task_stats(pid).items()}


def test_a_thread_under_fifo_passes_it_on_and_a_thread_can_leave_it():
    if not fifo_allowed():
        pytest.skip('this machine refuses SCHED_FIFO')

    def run():
        realtime.use_fifo(7)
        inherited = in_thread(realtime.policy)
        left = in_thread(lambda: (realtime.use_default(), realtime.policy())[1])
        return realtime.policy(), inherited, left
    assert in_thread(run) == ('SCHED_FIFO 7', 'SCHED_FIFO 7', 'SCHED_OTHER')
    assert realtime.policy() == 'SCHED_OTHER'  # the test's own thread never changed


def test_a_refused_priority_says_how_to_allow_it(monkeypatch):
    def refuse(*_):
        raise PermissionError(1, 'Operation not permitted')
    monkeypatch.setattr(os, 'sched_setscheduler', refuse)
    with pytest.raises(realtime.RealtimeError, match=r'ulimit -r.*CAP_SYS_NICE.*rtprio'):
        realtime.use_fifo(50)
    for bad in (0, 100, -1):
        with pytest.raises(ValueError, match='expected 1-99'):
            realtime.use_fifo(bad)


def test_threads_started_in_a_default_scheduler_block_do_not_inherit_fifo():
    if not fifo_allowed():
        pytest.skip('this machine refuses SCHED_FIFO')

    def run():
        realtime.use_fifo(5)
        with realtime.default_scheduler():
            inside, started = realtime.policy(), in_thread(realtime.policy)
        return inside, started, realtime.policy()
    assert in_thread(run) == ('SCHED_OTHER', 'SCHED_OTHER', 'SCHED_FIFO 5')


def test_a_lifecycle_configure_on_a_fifo_thread_starts_the_recorder_without_it(
        harness, model_path, tmp_path):
    """The recorder's writer and onnxruntime's threads start in configure."""
    if not fifo_allowed():
        pytest.skip('this machine refuses SCHED_FIFO')
    rig = Rig(harness, model_path, autostart=False, record_path=str(tmp_path / 'r.mcap'))

    def configure():
        realtime.use_fifo(5)
        rig.node.trigger_configure()
        return realtime.policy()
    assert in_thread(configure) == 'SCHED_FIFO 5'
    recorder = rig.node._recorder
    assert recorder is not None, rig.node.error
    assert thread_policies(os.getpid())[recorder._thread.native_id][1:] == \
        (os.SCHED_OTHER, 0)


def test_realtime_priority_and_lock_memory_are_read_only_and_reported(harness, model_path):
    rig = Rig(harness, model_path)
    for name, value in (('realtime_priority', 10), ('lock_memory', True)):
        assert not rig.node.set_parameters([Parameter(name, value=value)])[0].successful
    values = {kv.key: kv.value for kv in rig.node.diagnostics().values}
    assert values['scheduling'] == 'SCHED_OTHER'  # made by this test's thread
    assert values['memory_locked'] == 'no'


def test_memory_is_not_locked_under_a_finite_limit_without_cap_ipc_lock(monkeypatch):
    """Pages mapped later would be refused past the limit: refuse the lock instead."""
    monkeypatch.setattr(realtime, '_memlock_limit', lambda: 64 << 10)
    monkeypatch.setattr(realtime, '_has_capability', lambda bit: False)
    with pytest.raises(realtime.RealtimeError,
                       match=r'64 KiB \(ulimit -l\).*CAP_IPC_LOCK.*memlock unlimited'):
        realtime.lock_memory()
    assert realtime.locked_bytes() == 0


WITHOUT_SYS_NICE = ['setpriv', '--bounding-set', '-sys_nice', '--inh-caps', '-sys_nice']
WITHOUT_IPC_LOCK = ['setpriv', '--bounding-set', '-ipc_lock', '--inh-caps', '-ipc_lock']


def start_node(model_path, prefix, *params):
    """Start the node (autostart) in a process; returns it, its output on stdout."""
    command = [sys.executable, '-m', 'vision_policy.node', '--ros-args', '-p',
               f'model_path:={model_path}', '-p', 'autostart:=true']
    for param in params:
        command += ['-p', param]
    return subprocess.Popen(prefix + command, env=dict(os.environ, PYTHONUNBUFFERED='1'),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_until(proc, needle: str, deadline_s: float = 60.0) -> str:
    """Read the process's output until a line holds needle; returns what was read."""
    log, deadline = [], time.monotonic() + deadline_s
    while not any(needle in line for line in log):
        assert proc.poll() is None and time.monotonic() < deadline, ''.join(log)
        log.append(proc.stdout.readline())
    return ''.join(log)


def locked_kib(pid: int) -> int:
    """Return VmLck of a process (kB)."""
    return int(realtime._status('VmLck', pid).split()[0])


@pytest.mark.parametrize('capabilities', ['as given', 'without CAP_SYS_NICE'])
def test_the_node_runs_its_executor_and_frame_worker_under_fifo_and_dds_not(
        model_path, capabilities):
    allowed, prefix = fifo_allowed(), []
    if capabilities != 'as given':
        if not shutil.which('setpriv') or os.geteuid() != 0:
            pytest.skip('needs root and setpriv to take CAP_SYS_NICE away')
        allowed = resource.getrlimit(resource.RLIMIT_RTPRIO)[0] >= 10
        prefix = WITHOUT_SYS_NICE
    proc = start_node(model_path, prefix, 'realtime_priority:=10')
    try:
        text = read_until(proc, 'executor thread:')
        threads = thread_policies(proc.pid)
        if allowed:
            assert 'executor thread: SCHED_FIFO 10 (frame worker SCHED_FIFO 9)' in text, text
            assert threads[proc.pid][1:] == (os.SCHED_FIFO, 10)
            assert sum(t[1:] == (os.SCHED_FIFO, 9) for t in threads.values()) == 1, threads
            dds = [t[1] for t in threads.values() if t[0].startswith('dds.')]
            assert dds and all(p == os.SCHED_OTHER for p in dds), threads
        else:
            assert re.search(r'realtime_priority: SCHED_FIFO priority 10 refused.*'
                             r'default scheduler', text), text
            assert 'executor thread: SCHED_OTHER (frame worker SCHED_OTHER)' in text, text
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.parametrize('capabilities', ['as given', 'without CAP_IPC_LOCK'])
def test_the_node_locks_its_memory_or_says_why_not(model_path, capabilities):
    allowed = realtime._memlock_limit() is None or realtime._has_capability(
        realtime.CAP_IPC_LOCK)
    prefix = []
    if capabilities != 'as given':
        if not shutil.which('setpriv') or os.geteuid() != 0:
            pytest.skip('needs root and setpriv to take CAP_IPC_LOCK away')
        allowed, prefix = realtime._memlock_limit() is None, WITHOUT_IPC_LOCK
    proc = start_node(model_path, prefix, 'lock_memory:=true')
    try:
        text = read_until(proc, 'executor thread:')
        if allowed:
            assert re.search(r'memory locked: yes, \d+ MB at start', text), text
            assert locked_kib(proc.pid) > 0
        else:
            assert 'lock_memory refused' in text and 'memory is not locked' in text, text
            assert locked_kib(proc.pid) == 0
    finally:
        proc.terminate()
        proc.wait(30)
