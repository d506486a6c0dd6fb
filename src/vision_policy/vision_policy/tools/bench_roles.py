"""
The separate processes of vision_policy_bench: publisher, listener, echo, baseline, probe.

Run by vision_policy_bench as ``python3 -m vision_policy.tools.bench_roles ROLE ...``;
each role but the stall probe (no ROS) is a plain rclpy program, so that every hop
crosses real DDS.
"""

from __future__ import annotations

import argparse
import array
import json
import os
import signal
import sys
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data, QoSProfile
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

JOINTS = ['shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint']
TRAJECTORY = '/joint_trajectory_controller/joint_trajectory'
ECHO = '/bench/echo'
PIXEL_BYTES = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1}


def publisher(args) -> None:
    """
    Publish images at a fixed rate and joint states at 100 Hz until the duration ends.

    Images start once the subject has subscribed (plus the warm-up), so a frame sent is a
    frame the subject could have received; the count sent goes to ``--out`` as JSON, with
    the frames this process sent over half a period late (when it was stalled itself).
    """
    node = rclpy.create_node('bench_publisher')
    # Reliable, like most camera drivers and Isaac Sim's camera helper: then best-effort
    # (ours) and reliable (baseline) subscribers both connect.
    image_pub = node.create_publisher(Image, '/camera/image_raw', QoSProfile(depth=10))
    joint_pub = node.create_publisher(JointState, '/joint_states', 10)
    channels = PIXEL_BYTES[args.encoding]
    rng = np.random.default_rng(0)
    images = []
    for _ in range(4):
        msg = Image(width=args.width, height=args.height, encoding=args.encoding,
                    step=args.width * channels)
        msg.data = array.array('B', rng.integers(0, 256, args.width * args.height * channels,
                                                 dtype=np.uint8).tobytes())
        images.append(msg)
    joints = JointState(name=JOINTS, position=[0.0, 0.3, -0.6], velocity=[0.0, 0.0, 0.0])
    clock = node.get_clock()
    start = time.monotonic()
    deadline = start + args.timeout
    while image_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        joints.header.stamp = clock.now().to_msg()
        joint_pub.publish(joints)
        time.sleep(0.01)
    start = time.monotonic()
    next_image, next_joint, k = start + args.warmup, start, 0
    late = []  # (wall time, ms): frames sent over half a period late, this process stalled
    while time.monotonic() - start < args.warmup + args.duration:
        now = time.monotonic()
        if now >= next_joint:
            joints.header.stamp = clock.now().to_msg()
            joint_pub.publish(joints)
            next_joint += 0.01
        if now >= next_image:
            if now - next_image > 0.5 / args.rate:
                late.append((time.time(), round((now - next_image) * 1e3, 1)))
            msg = images[k % len(images)]
            msg.header.stamp = clock.now().to_msg()
            image_pub.publish(msg)
            k += 1
            next_image += 1.0 / args.rate
        time.sleep(max(0.0, min(next_image, next_joint) - time.monotonic()))
    with open(args.out, 'w') as f:
        json.dump({'sent': k, 'end_time': time.time(), 'late': late}, f)
    node.destroy_node()


def listener(args) -> None:
    """Record (receive time - source stamp) of trajectories and echoes; save as JSON."""
    node = rclpy.create_node('bench_listener')
    clock = node.get_clock()
    latency, arrivals, diagnostics, stamps, received_at = [], [], {}, set(), []
    snapshots = []  # (wall time, diagnostics) of every status: the bench picks one

    def on_stamped(msg) -> None:
        now = clock.now().nanoseconds
        header = getattr(msg, 'header', msg)  # the echo sends a bare Header
        stamp = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
        arrivals.append(time.monotonic())
        if stamp:
            latency.append((now - stamp) * 1e-9)
            received_at.append(time.time())
            stamps.add(stamp)

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if 'policy inference' in status.name or 'baseline' in status.name:
                diagnostics.update({kv.key: kv.value for kv in status.values})
                snapshots.append((time.time(), dict(diagnostics)))

    reliable = QoSProfile(depth=100)
    node.create_subscription(JointTrajectory, TRAJECTORY, on_stamped, reliable)
    node.create_subscription(Header, ECHO, on_stamped, reliable)
    node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 10)
    stop = {'now': False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    end = time.monotonic() + args.timeout
    # --count 0: until SIGTERM (the benchmark stops it after the publisher has finished).
    while not stop['now'] and (args.count == 0 or len(arrivals) < args.count) and \
            time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
    # Let one more diagnostics message arrive with the final counters.
    settle = time.monotonic() + 1.5
    while time.monotonic() < settle:
        rclpy.spin_once(node, timeout_sec=0.1)
    with open(args.out, 'w') as f:
        json.dump({'latency_s': latency, 'received_at': received_at, 'arrivals': arrivals,
                   'diagnostics': diagnostics, 'snapshots': snapshots,
                   'frames_answered': len(stamps)}, f)
    node.destroy_node()


def echo(args) -> None:
    """Floor: receive each image as any Python node must and send back a tiny message."""
    node = rclpy.create_node('bench_echo')
    pub = node.create_publisher(Header, ECHO, 10)
    node.create_subscription(Image, '/camera/image_raw',
                             lambda msg: pub.publish(msg.header), qos_profile_sensor_data)
    _spin(node)


def baseline(args) -> None:
    """
    Run the policy the way tutorials write it, for comparison.

    Copies the payload into a new array, cv2.resize with default settings, new input
    arrays each tick, default onnxruntime session options, reliable QoS with a deep
    queue. Same model and observation as the bundled card.
    """
    import cv2
    import onnxruntime as ort
    node = rclpy.create_node('baseline_policy')
    session = ort.InferenceSession(args.model, providers=['CPUExecutionProvider'])
    pub = node.create_publisher(JointTrajectory, TRAJECTORY, 10)
    state = {'q': None, 'dq': None, 'last': np.zeros(3, dtype=np.float32)}
    default = np.array([0.0, 0.3, -0.6], dtype=np.float32)

    def on_joints(msg: JointState) -> None:
        state['q'] = np.array(msg.position, dtype=np.float32)
        state['dq'] = np.array(msg.velocity, dtype=np.float32)

    def on_image(msg: Image) -> None:
        if state['q'] is None:
            return
        img = np.array(msg.data, dtype=np.uint8).reshape(msg.height, msg.width, -1)
        img = cv2.resize(img, (64, 64))
        x = img.astype(np.float32) / 255.0
        x = x - x.mean(axis=(0, 1))
        x = np.expand_dims(np.transpose(x, (2, 0, 1)), 0).astype(np.float32)
        obs = np.concatenate([state['q'] - default, state['dq'] * 0.1, state['last']])
        action = session.run(None, {'obs': obs[None].astype(np.float32), 'image': x})[0][0]
        state['last'] = action
        out = JointTrajectory(joint_names=JOINTS)
        out.header.stamp = msg.header.stamp
        point = JointTrajectoryPoint(positions=[float(v) for v in action * 0.5 + default])
        point.time_from_start.nanosec = 50_000_000
        out.points = [point]
        pub.publish(out)

    node.create_subscription(JointState, '/joint_states', on_joints, 10)
    node.create_subscription(Image, '/camera/image_raw', on_image, QoSProfile(depth=10))
    _spin(node)


def stall_probe(args) -> None:
    """
    Wake every 5 ms on one core under SCHED_FIFO 99; record each wake-up over 4 ms late.

    A thread that runs ahead of every other one and still wakes late was not run by the
    machine: the virtual machine's core stalled, where the hypervisor's steal time may not
    show it. On SIGINT or SIGTERM writes ``--out``: the core, whether SCHED_FIFO was
    granted, the wake-ups, and each late one as (wall time, ms late). No ROS.
    """
    from ..realtime import RealtimeError, use_fifo
    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(True))
    os.sched_setaffinity(0, {args.cpu})
    try:
        use_fifo(99)
        fifo = True
    except RealtimeError:
        fifo = False
    period, late, wakeups = 0.005, [], 0
    due = time.monotonic() + period
    while True:  # at least one wake-up, however early the signal comes
        time.sleep(max(0.0, due - time.monotonic()))
        now = time.monotonic()
        wakeups += 1
        if now - due > 0.004:
            late.append((time.time(), round((now - due) * 1e3, 1)))
        due = max(due + period, now)
        if stop:
            break
    with open(args.out, 'w') as f:
        json.dump({'cpu': args.cpu, 'fifo': fifo, 'wakeups': wakeups, 'late': late}, f)


def _spin(node) -> None:
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass


def main(argv=None) -> int:
    """Dispatch to a role."""
    parser = argparse.ArgumentParser(prog='bench_roles')
    parser.add_argument('role', choices=['publisher', 'listener', 'echo', 'baseline',
                                         'stall_probe'])
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--encoding', default='rgb8', choices=sorted(PIXEL_BYTES))
    parser.add_argument('--rate', type=float, default=30.0)
    parser.add_argument('--duration', type=float, default=10.0)
    parser.add_argument('--warmup', type=float, default=1.0)
    parser.add_argument('--count', type=int, default=1000)
    parser.add_argument('--timeout', type=float, default=600.0)
    parser.add_argument('--out', default='listener.json')
    parser.add_argument('--model', default='')
    parser.add_argument('--cpu', type=int, default=0, help='stall_probe: the core to watch')
    args = parser.parse_args(argv)
    if args.role == 'stall_probe':
        stall_probe(args)
        return 0
    rclpy.init()
    try:
        {'publisher': publisher, 'listener': listener, 'echo': echo,
         'baseline': baseline}[args.role](args)
    except KeyboardInterrupt:
        pass  # the benchmark stops its processes with SIGINT
    finally:
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
