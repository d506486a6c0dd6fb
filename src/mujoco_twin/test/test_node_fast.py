"""The twin faster than real time (real_time_factor <= 0), lock-step with /clock."""
import time

from ros_probe import TwinUnderTest


def seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def test_runs_faster_than_real_time_and_publishes_clock(rendering):
    under_test = TwinUnderTest(
        image_width=64, image_height=64, camera_rate=5.0, joint_state_rate=20.0,
        real_time_factor=0.0, use_sim_time=True)
    try:
        probe = under_test.probe
        assert probe.wait_for(lambda: len(probe.clocks) > 10, 10.0), 'no /clock'
        start_sim, start_wall = seconds(probe.clocks[-1].clock), time.monotonic()
        time.sleep(2.0)
        sim_elapsed = seconds(probe.clocks[-1].clock) - start_sim
        wall_elapsed = time.monotonic() - start_wall
        assert sim_elapsed > 2.0 * wall_elapsed, f'{sim_elapsed:.2f} s sim in {wall_elapsed:.2f} s'
        clock = [seconds(m.clock) for m in probe.clocks[-50:]]
        assert all(b > a for a, b in zip(clock, clock[1:]))
        images = [seconds(m.header.stamp) for m in probe.images[-3:]]
        assert len(images) == 3 and abs(images[2] - images[1] - 0.2) < 0.0021
    finally:
        under_test.close()
