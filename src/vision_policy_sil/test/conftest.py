"""Shared test helper: wait for a condition with a deadline, never for a fixed time."""

import time

import pytest


def wait_for(predicate, timeout: float, what: str, check=None):
    """Poll until predicate() is truthy; fail the test naming `what` on timeout."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if check is not None:
            check()
        if time.monotonic() > end:
            pytest.fail(f'{what}: nothing after {timeout:g} s')
        time.sleep(0.0005)
