"""
Hypothesis fuzzing of the pure core: images, joint states and actions of every shape.

Invariants: a bad input raises the module's own error type (never anything else), a
good one gives finite values of the right shape, and the safety filter never emits a
command outside the limits or further than max_step from the last one.
"""

import os
from types import SimpleNamespace

from hypothesis import given, HealthCheck, settings, strategies as st
import numpy as np
from vision_policy.action import SafetyFilter, SafetyLimits
from vision_policy.card import ImageSpec
from vision_policy.core import InputError, JointMap
from vision_policy.image import ENCODINGS, ImageError, ImagePipeline, view_image

EXAMPLES = int(os.environ.get('VISION_POLICY_FUZZ_EXAMPLES', '150'))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
JOINTS = ['a', 'b', 'c']
PIPELINE = ImagePipeline(ImageSpec(width=8, height=6, normalize='isaaclab', layout='NCHW'))


@st.composite
def image_messages(draw):
    encoding = draw(st.sampled_from(sorted(ENCODINGS) + ['yuv422', '8UC3', '', 'mono16']))
    width = draw(st.sampled_from([0, 1, 2, 7, 33, 16385]) | st.integers(0, 40))
    height = draw(st.sampled_from([0, 1, 3, 16385]) | st.integers(0, 30))
    pixel = ENCODINGS.get(encoding, (np.uint8, 3))
    row = width * pixel[1] * np.dtype(pixel[0]).itemsize
    step = draw(st.sampled_from([row, row + 3, max(row - 1, 0), 0]))
    size = step * height if width <= 64 and height <= 64 else 100
    size = draw(st.sampled_from([size, max(size - 1, 0), size + 5, 0]))
    data = draw(st.binary(min_size=size, max_size=size)) if size < 20000 else bytes(size)
    return SimpleNamespace(data=data, width=width, height=height, encoding=encoding,
                           step=step, is_bigendian=draw(st.booleans()))


@FUZZ
@given(image_messages())
def test_image_messages_are_processed_or_rejected(msg):
    try:
        view = view_image(msg.data, msg.width, msg.height, msg.encoding, msg.step,
                          msg.is_bigendian)
        out = PIPELINE.process(view, msg.encoding)
    except ImageError:
        return
    # Accepted: only well-formed payloads of an encoding the card takes get here.
    assert msg.encoding in PIPELINE.spec.source_encodings
    assert len(msg.data) == msg.step * msg.height
    assert out.shape == (3, 6, 8) and np.all(np.isfinite(out))


finite = st.floats(-10, 10)
anything = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def joint_messages(draw):
    pool = JOINTS + ['extra', '', 'a ']
    names = draw(st.lists(st.sampled_from(pool), max_size=6))
    n = len(names)
    pos = draw(st.lists(finite | anything, min_size=max(n + draw(st.integers(-1, 1)), 0),
                        max_size=max(n + 1, 0)))
    vel = draw(st.sampled_from([[], None]) | st.lists(finite, min_size=n, max_size=n))
    return names, pos, vel or []


@FUZZ
@given(joint_messages())
def test_joint_states_are_mapped_or_rejected(msg):
    names, pos, vel = msg
    jmap = JointMap(JOINTS, needs_velocity=True)
    q, dq = np.zeros(3), np.zeros(3)
    valid = (len(pos) == len(names) and len(vel) == len(names) and
             len(set(names)) == len(names) and set(JOINTS) <= set(names) and
             all(np.isfinite(pos[names.index(j)]) for j in JOINTS))
    try:
        jmap.extract(names, pos, vel, q, dq)
    except InputError:
        assert not valid
        return
    assert valid
    np.testing.assert_array_equal(q, [pos[names.index(j)] for j in JOINTS])
    np.testing.assert_array_equal(dq, [vel[names.index(j)] for j in JOINTS])


LIMITS = SafetyLimits.build(3, [-1.0, -2.0, 0.0], [1.0, 0.5, 3.0], [0.05, 0.1, 0.2])


@FUZZ
@given(st.lists(finite, min_size=3, max_size=3),
       st.lists(st.lists(anything | st.floats(-1e6, 1e6), min_size=3, max_size=3),
                min_size=1, max_size=30))
def test_safety_filter_never_exceeds_limits_or_steps(start, targets):
    f = SafetyFilter(LIMITS)
    f.set_reference(np.array(start))
    # A start outside the limits snaps to the nearest limit first; after that, steps hold.
    previous = np.clip(start, LIMITS.lower, LIMITS.upper)
    first = True
    for target in targets:
        out = f.apply(np.array(target))
        if out is None:
            assert not np.all(np.isfinite(target))
            continue
        assert np.all(out >= LIMITS.lower) and np.all(out <= LIMITS.upper)
        if not first:
            assert np.all(np.abs(out - previous) <= np.array(LIMITS.max_step) + 1e-12)
        elif np.all((np.array(start) >= LIMITS.lower) & (np.array(start) <= LIMITS.upper)):
            assert np.all(np.abs(out - np.array(start)) <= np.array(LIMITS.max_step) + 1e-12)
        previous, first = out.copy(), False
