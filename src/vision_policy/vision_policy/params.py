"""
The parameters of policy_inference: one table, read into one frozen dataclass. No ROS here.

Each row is typed by its default, documented, range-checked (rclpy enforces ``range``
through the parameter descriptor) and says whether it may change while the node is
configured. A change is validated as a whole batch (``NodeParams.updated``), so a launch
or ``ros2 param load`` that moves two limits together is judged on the final values.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
import math
from typing import Any, Mapping, Optional

from .action import SafetyLimits
from .card import PolicyCard
from .realtime import PRIORITIES
from .runtime import DEFAULT_PROVIDERS


class ParameterError(ValueError):
    """A parameter value, or a batch of them, is refused; the message names the parameter."""


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter: its default (which fixes its type), text, range and mutability."""

    name: str
    default: Any
    description: str
    range: Optional[tuple] = None  # noqa: A003 (inclusive (low, high), enforced by rclpy)
    runtime: bool = False          # may change while the node is configured
    choices: tuple = ()
    read_only: bool = False        # read once at start: set it at launch


PARAMETERS = (
    ParamSpec('model_path', '', 'ONNX policy file (required)'),
    ParamSpec('card_path', '', 'policy card YAML; empty: <model>.yaml beside the model, else '
                               'the card embedded in the ONNX metadata'),
    ParamSpec('autostart', False, 'configure and activate on start (no lifecycle manager)'),
    ParamSpec('image_topic', 'camera/image_raw', "sensor_msgs/Image input (a card's one "
                                                 'camera; a named camera <name> of a card '
                                                 'with several: parameter <name>_image_topic, '
                                                 'default <name>/image_raw)'),
    ParamSpec('joint_states_topic', 'joint_states', 'sensor_msgs/JointState input'),
    ParamSpec('trajectory_topic', 'joint_trajectory_controller/joint_trajectory',
              'trajectory_msgs/JointTrajectory output'),
    ParamSpec('estop_topic', 'emergency_stop', 'std_msgs/Bool; true holds the robot'),
    ParamSpec('camera_info_topic', 'camera/camera_info',
              'sensor_msgs/CameraInfo of the image, when the card needs it (fov_matching, '
              'distance_to_camera depth); a named camera: <name>_camera_info_topic'),
    ParamSpec('fov_matching', True, "crop the image to the card's image.camera field of view "
                                    'from camera_info (cards with image.camera and no '
                                    'image.crop); false: the whole image'),
    ParamSpec('undistort', False, "undistort each image with camera_info's distortion "
                                  '(plumb_bob, rational_polynomial, equidistant) to the pinhole '
                                  'camera with the same K, before the crop; false: distortion '
                                  'is ignored with a warning'),
    ParamSpec('control_dt', 0.0, 'control period in s; 0 = the card control_dt', (0.0, 10.0)),
    ParamSpec('trigger', 'timer', "'timer' (fixed rate) or 'image' (one tick per new image)",
              choices=('timer', 'image')),
    ParamSpec('stamp_source', 'zero',
              "trajectory header.stamp: 'zero' (the controller starts it on receipt) or "
              "'image' (stamp of the image used; for tracing, not for "
              'joint_trajectory_controller)', choices=('zero', 'image')),
    ParamSpec('providers', list(DEFAULT_PROVIDERS),
              'onnxruntime providers in order of preference; missing ones are skipped'),
    ParamSpec('intra_op_threads', 1, 'onnxruntime intra-op threads', (1, 64)),
    ParamSpec('cuda_graph', True, 'CUDA provider: replay the model as a captured CUDA graph '
                                  '(a model that cannot be captured runs without one)'),
    ParamSpec('time_from_start', 0.0, 'time_from_start of the trajectory point in s; '
                                      '0 = control period', (0.0, 10.0)),
    ParamSpec('robot_joint_names', [''], 'robot names of the card joints, in card order; '
                                         'empty = the card names'),
    ParamSpec('max_image_age', 0.2, 'hold when the latest image is older than this (s)',
              (0.001, 60.0), runtime=True),
    ParamSpec('max_camera_skew', 0.0, 'several cameras: hold when the stamps of their newest '
                                      "frames are further apart than this (s); 0 = the card's "
                                      'max_camera_skew, else one control period',
              (0.0, 60.0), runtime=True),
    ParamSpec('max_joint_state_age', 0.1, 'hold when the latest joint state is older than '
                                          'this (s)', (0.001, 60.0), runtime=True),
    ParamSpec('max_extra_age', 0.2, 'hold when a sample of another source the card needs '
                                    '(IMU, odometry, cmd_vel, ...) is older than this (s)',
              (0.001, 60.0), runtime=True),
    ParamSpec('position_lower_limits', [-math.inf],
              'per action joint (rad or m); one value = all joints; -inf = the card clip',
              runtime=True),
    ParamSpec('position_upper_limits', [math.inf],
              'per action joint; one value = all joints; inf = the card clip', runtime=True),
    ParamSpec('max_joint_step', [0.1], 'largest change of a joint target per tick (rad or m); '
                                       'finite and > 0', runtime=True),
    ParamSpec('clock_timeout', 2.0, 'with use_sim_time: hold when /clock has not advanced for '
                                    'this long in wall time (s)', (0.1, 60.0)),
    ParamSpec('record_path', '', 'write an MCAP recording (inputs used, per-tick data) to this '
                                 'file; empty = no recording; see recording.py'),
    ParamSpec('realtime_priority', 0, 'run the executor thread (control timer, callbacks) '
                                      'under SCHED_FIFO at this priority, 1-99, as '
                                      "ros2_control's update loop; 0 = the default "
                                      'scheduler. Needs CAP_SYS_NICE or an rtprio limit; '
                                      'refused: a warning and the default scheduler',
              (0, PRIORITIES[1]), read_only=True),
    ParamSpec('lock_memory', False, "lock the node's memory in RAM at start (mlockall), as "
                                    "ros2_control's lock_memory: no page of the node is "
                                    'evicted and faulted back in a tick. Needs CAP_IPC_LOCK '
                                    'or an unlimited memlock limit; refused: a warning',
              read_only=True),
    ParamSpec('plugin_modules', [''], 'modules of observation terms, action terms and sources '
                                      'to load besides the installed entry points (each lists '
                                      'VISION_POLICY_PLUGINS); empty = none'),
)
SPECS: Mapping[str, ParamSpec] = {p.name: p for p in PARAMETERS}
SAFETY_LIMITS = ('position_lower_limits', 'position_upper_limits', 'max_joint_step')


@dataclass(frozen=True)
class NodeParams:
    """Every parameter the node reads, validated together."""

    model_path: str
    card_path: str
    autostart: bool
    image_topic: str
    joint_states_topic: str
    trajectory_topic: str
    estop_topic: str
    camera_info_topic: str
    fov_matching: bool
    undistort: bool
    control_dt: float
    trigger: str
    stamp_source: str
    providers: tuple
    intra_op_threads: int
    cuda_graph: bool
    time_from_start: float
    robot_joint_names: tuple
    max_image_age: float
    max_camera_skew: float
    max_joint_state_age: float
    max_extra_age: float
    position_lower_limits: tuple
    position_upper_limits: tuple
    max_joint_step: tuple
    clock_timeout: float
    record_path: str
    realtime_priority: int
    lock_memory: bool
    plugin_modules: tuple

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> 'NodeParams':
        """Build from {name: value} (all names of PARAMETERS); ParameterError if invalid."""
        data = {}
        for f in fields(cls):
            value = values[f.name]
            data[f.name] = tuple(value) if isinstance(value, (list, tuple)) else value
        data['robot_joint_names'] = tuple(n for n in data['robot_joint_names'] if n)
        data['plugin_modules'] = tuple(n for n in data['plugin_modules'] if n)
        params = cls(**data)
        params._validate()
        return params

    def _validate(self) -> None:
        for spec in PARAMETERS:
            value = getattr(self, spec.name)
            if spec.choices and value not in spec.choices:
                raise ParameterError(f'{spec.name}: expected one of {list(spec.choices)}, '
                                     f'found {value!r}')
        for name in SAFETY_LIMITS:
            values = getattr(self, name)
            if not values or any(math.isnan(v) for v in values):
                raise ParameterError(f'{name}: expected numbers (no NaN), found '
                                     f'{list(values)}')

    def updated(self, changes: Mapping[str, Any], configured: bool) -> 'NodeParams':
        """
        Return the parameters after a batch of changes, validated as a whole.

        Refuses (ParameterError) a change of a parameter that takes effect at configure
        while the node is configured.
        """
        if configured:
            frozen = sorted(n for n in changes if n in SPECS and not SPECS[n].runtime)
            if frozen:
                raise ParameterError(f'{", ".join(frozen)}: takes effect at configure; '
                                     f'deactivate and clean up the node first')
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update({k: v for k, v in changes.items() if k in values})
        return NodeParams.from_values(values)

    def limits(self, card: PolicyCard) -> SafetyLimits:
        """Return the safety limits these parameters give for the card (ParameterError)."""
        try:
            return SafetyLimits.from_card(card, self.position_lower_limits,
                                          self.position_upper_limits, self.max_joint_step)
        except ValueError as exc:
            raise ParameterError(str(exc)) from None

    def with_card(self, card: PolicyCard) -> 'NodeParams':
        """Resolve the card-dependent defaults (control period)."""
        return replace(self, control_dt=self.control_dt or card.control_dt)

    def camera_skew(self, card: PolicyCard) -> float:
        """Return the largest stamp spread (s) of several cameras' frames used by one tick."""
        return self.max_camera_skew or card.max_camera_skew or self.control_dt or \
            card.control_dt
