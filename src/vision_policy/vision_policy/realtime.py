"""
Real-time scheduling for the control thread: SCHED_FIFO, as ros2_control's update loop.

Under Linux's default scheduler a woken control thread shares the cores with every other
process of that policy: the camera driver, the controller, a recorder. A thread under
``SCHED_FIFO`` runs as soon as it is woken, ahead of all of them (at 1080p60 on the 2-core
VM, beside the camera's publisher: tick jitter p99 1.0 ms against 2.4 ms). ``use_fifo``
puts a thread there; threads it starts later inherit the policy (pthreads' default), so
code that starts threads which must not have it runs in ``default_scheduler()``. Needs
``CAP_SYS_NICE`` or an ``rtprio`` limit (``ulimit -r``, ``/etc/security/limits.conf``;
``--cap-add=SYS_NICE`` or ``--ulimit rtprio=99`` for a container). Linux only; elsewhere
``use_fifo`` raises.

``lock_memory`` keeps the process's pages in RAM (``mlockall``), as ros2_control's
``lock_memory``: a page the kernel evicted under memory pressure (library code; any page
where there is swap) would otherwise be read back from disk inside a tick. Locking now and future
mappings faults every mapped page in at once and keeps new ones resident as they are mapped.
With a finite ``memlock`` limit a mapping made later (a thread's stack, a larger frame)
could be refused, an allocation error mid-run; so it locks only with an unlimited limit or
``CAP_IPC_LOCK``.
"""

from __future__ import annotations

from contextlib import contextmanager
import ctypes
import os
from typing import Optional

PRIORITIES = (1, 99)
MCL_CURRENT, MCL_FUTURE = 1, 2
CAP_IPC_LOCK = 14


class RealtimeError(OSError):
    """SCHED_FIFO or memory locking was refused; the message says why and how to allow it."""


def use_fifo(priority: int, thread_id: int = 0) -> None:
    """
    Run a thread under SCHED_FIFO at priority (1-99); RealtimeError if refused.

    thread_id: a thread's ``native_id`` (Linux takes a thread id here); 0 = the caller.
    """
    if not PRIORITIES[0] <= priority <= PRIORITIES[1]:
        raise ValueError(f'SCHED_FIFO priority {priority}: expected 1-99')
    if not hasattr(os, 'SCHED_FIFO'):
        raise RealtimeError('SCHED_FIFO is not available on this system')
    try:
        os.sched_setscheduler(thread_id, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError:
        limit = _rtprio_limit()
        raise RealtimeError(
            f'SCHED_FIFO priority {priority} refused: this process may use real-time '
            f'priorities up to {limit} (ulimit -r). Allow it with CAP_SYS_NICE or an '
            f'rtprio limit in /etc/security/limits.conf (a container: --cap-add=SYS_NICE '
            f'or --ulimit rtprio=99)') from None
    except OSError as exc:
        raise RealtimeError(f'SCHED_FIFO priority {priority} refused: {exc}') from None


def use_default() -> None:
    """Run the calling thread under the default policy (SCHED_OTHER), as a new process does."""
    if hasattr(os, 'sched_setscheduler'):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


@contextmanager
def default_scheduler():
    """
    Run the block with the calling thread under the default policy, then restore it.

    Threads started in the block (onnxruntime's pools, a recorder's writer) do not inherit
    the caller's SCHED_FIFO: a pool thread spinning at a real-time priority would hold its
    core against every process of the default policy.
    """
    kind = os.sched_getscheduler(0) if hasattr(os, 'sched_getscheduler') else None
    if kind in (None, os.SCHED_OTHER):
        yield
        return
    param = os.sched_getparam(0)
    use_default()
    try:
        yield
    finally:
        os.sched_setscheduler(0, kind, param)


def policy(thread_id: int = 0) -> str:
    """Return the policy of a thread (0: the caller): 'SCHED_FIFO 50', 'SCHED_OTHER', ..."""
    if not hasattr(os, 'sched_getscheduler'):
        return 'unknown'
    kind = os.sched_getscheduler(thread_id)
    names = {getattr(os, n): n for n in ('SCHED_OTHER', 'SCHED_FIFO', 'SCHED_RR',
                                         'SCHED_BATCH', 'SCHED_IDLE') if hasattr(os, n)}
    name = names.get(kind, str(kind))
    if kind in (getattr(os, 'SCHED_FIFO', None), getattr(os, 'SCHED_RR', None)):
        return f'{name} {os.sched_getparam(thread_id).sched_priority}'
    return name


def lock_memory() -> int:
    """
    Lock every page of the process in RAM, now and future mappings; returns the bytes locked.

    RealtimeError (nothing locked) without ``CAP_IPC_LOCK`` or an unlimited memlock limit,
    or when the kernel refuses.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, 'mlockall') or not os.path.exists('/proc/self/status'):
        raise RealtimeError('mlockall is not available on this system')
    limit = _memlock_limit()
    if limit is not None and not _has_capability(CAP_IPC_LOCK):
        raise RealtimeError(
            f'lock_memory refused: this process may lock {limit >> 10} KiB (ulimit -l), and '
            f'pages it maps later would then be refused. Allow it with CAP_IPC_LOCK or '
            f'"memlock unlimited" in /etc/security/limits.conf (a container: '
            f'--cap-add=IPC_LOCK or --ulimit memlock=-1)')
    if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
        error = ctypes.get_errno()
        libc.munlockall()  # nothing half-locked, and future mappings not locked
        raise RealtimeError(f'lock_memory refused: mlockall: {os.strerror(error)}')
    return locked_bytes()


def locked_bytes() -> int:
    """Return the bytes of this process locked in RAM (VmLck; 0 where unknown)."""
    value = _status('VmLck')
    return int(value.split()[0]) * 1024 if value else 0


def _memlock_limit() -> Optional[int]:
    """Return the soft memlock limit in bytes (None: unlimited)."""
    import resource
    soft = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def _has_capability(bit: int) -> bool:
    """Return whether this process has a capability in its effective set (CapEff)."""
    value = _status('CapEff')
    return bool(value) and bool(int(value, 16) >> bit & 1)


def _status(field: str, pid='self') -> str:
    """Return a field of /proc/<pid>/status, this process's by default ('' where none)."""
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                name, _, value = line.partition(':')
                if name == field:
                    return value.strip()
    except OSError:
        pass
    return ''


def _rtprio_limit() -> int:
    try:
        import resource
        return resource.getrlimit(resource.RLIMIT_RTPRIO)[0]
    except (ImportError, AttributeError, OSError):
        return 0
