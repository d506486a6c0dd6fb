"""Shared test helpers: paths to the bundled model and a real-rclpy harness."""

import os
from pathlib import Path
import threading
import time

import numpy as np
import pytest

# Keep this package's DDS traffic away from other test runs on the machine.
os.environ.setdefault('ROS_DOMAIN_ID', '37')
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')


def workspace_root() -> Path:
    """Find the workspace root (it holds models/) upwards from this file."""
    for parent in Path(__file__).resolve().parents:
        if (parent / 'models' / 'reach_policy.onnx').is_file():
            return parent
    raise FileNotFoundError('models/reach_policy.onnx not found above the tests')


@pytest.fixture(scope='session')
def model_path() -> Path:
    """Return the bundled example model."""
    return workspace_root() / 'models' / 'reach_policy.onnx'


@pytest.fixture(scope='session')
def fixtures_dir() -> Path:
    """../shared/fixtures/isaaclab (tests skip when it is absent)."""
    path = workspace_root().parent / 'shared' / 'fixtures' / 'isaaclab'
    if not path.is_dir():
        pytest.skip(f'Isaac Lab fixtures not found at {path}')
    return path


def rgb_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Make a seeded random RGB image, HxWx3 uint8."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


class Harness:
    """Spins nodes in a background executor; the test thread publishes and waits."""

    def __init__(self):
        import rclpy
        from rclpy.executors import MultiThreadedExecutor
        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.nodes = []
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._stop = False
        self._thread.start()

    def _spin(self):
        while not self._stop and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def add(self, node):
        """Spin node in the background; returns it."""
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def node(self, name: str):
        """Create a plain helper node in this context."""
        return self.add(self.rclpy.create_node(name, context=self.context))

    @staticmethod
    def wait_for(predicate, timeout: float = 10.0, period: float = 0.01) -> bool:
        """Poll predicate until true or timeout; returns its last value."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(period)
        return bool(predicate())

    def close(self):
        """Stop spinning and destroy everything."""
        self._stop = True
        self._thread.join(timeout=5)
        self.executor.shutdown(timeout_sec=5)
        for node in self.nodes:
            node.destroy_node()
        self.rclpy.shutdown(context=self.context)


@pytest.fixture
def harness():
    """Give a fresh rclpy context with a background executor."""
    h = Harness()
    yield h
    h.close()
