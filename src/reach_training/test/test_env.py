"""The training env is the twin seen through the card: pixels, observations, commands."""
import mujoco
from mujoco_twin.sim import ReachArmSim, SimConfig
import numpy as np
import pytest
from reach_training.env import ReachEnv, TiledRenderer
from reach_training.evaluate import make_core
from reach_training.randomization import ModelRandomizer, RandomizationConfig
from reach_training.task import expert_raw_action, LinearCommand, node_limits, TaskConfig
from reach_training.vec_env import BatchEnv
from vision_policy.action import ActionMapper
from vision_policy.core import PolicyCore
from vision_policy.image import ImagePipeline

# No random ROS timing: the comparisons below need the twin's exact tick.
EXACT = TaskConfig(max_command_delay_steps=0, max_image_age_steps=0,
                   max_joint_state_age_steps=0, home_start_prob=1.0, stale_command_prob=0.0)
NOMINAL = RandomizationConfig(enabled=False)


def test_nominal_frame_and_image_equal_the_twin(rendering, card):
    env = ReachEnv(card, EXACT, NOMINAL, seed=0)
    env.reset(seed=5, randomize=False, home_start=True)
    twin = ReachArmSim(SimConfig(image_width=640, image_height=480), seed=5)
    try:
        frame = env.renderer.tile(0).copy()
        np.testing.assert_array_equal(env.sim.target_position, twin.target_position)
        np.testing.assert_array_equal(frame, twin.render())
        expected = ImagePipeline(card.image).process(twin.render(), 'rgb8')
        np.testing.assert_array_equal(env.image, expected)
        assert env.image.shape == (3, 64, 64)
    finally:
        twin.close()
        env.close()


def test_target_pixel_is_on_the_red_blob(rendering, card):
    env = ReachEnv(card, EXACT, NOMINAL, seed=0)
    try:
        for seed in range(6):
            env.reset(seed=seed, randomize=False, home_start=True)
            image = env.image  # 3 x 64 x 64, Isaac Lab normalised
            red = np.clip(image[0] - image[1], 0.3, None) - 0.3
            if red.sum() < 1e-3:
                continue  # hidden behind the arm
            ys, xs = np.mgrid[:64, :64]
            centroid = np.array([(red * xs).sum(), (red * ys).sum()]) / red.sum()
            np.testing.assert_allclose(env.target_pixel(), centroid, atol=0.5)
    finally:
        env.close()


def test_tiles_equal_single_renders(rendering, card):
    sims = [ReachArmSim(SimConfig(image_width=640, image_height=480), seed=s) for s in range(5)]
    renderer = TiledRenderer(ReachArmSim().model, 640, 480, tiles=5)
    pipeline = ImagePipeline(card.image)
    try:
        for i, sim in enumerate(sims):
            sim.data.qpos[:] = [0.3 * i - 0.5, 0.2 * i, -0.3 * i]
            mujoco.mj_forward(sim.model, sim.data)
            renderer.capture(i, sim.model, sim.data)
        renderer.render(len(sims))
        for i, sim in enumerate(sims):
            single = sim.render()
            diff = np.abs(renderer.tile(i).astype(int) - single)
            # GL rounding at a tile's offset: at most one level, in a few edge pixels.
            assert diff.max() <= 1 and np.count_nonzero(diff) < 0.001 * diff.size, i
            expected = pipeline.process(single, 'rgb8').copy()
            got = pipeline.process(renderer.tile(i), 'rgb8')
            assert np.abs(got - expected).max() < 1e-3, i
    finally:
        renderer.close()
        for sim in sims:
            sim.close()


class ScriptedRuntime:
    """Stands in for onnxruntime: returns the given raw actions in turn."""

    def __init__(self, actions):
        self.actions = iter(actions)

    def run(self):
        return next(self.actions)

    def reset(self):
        pass


def test_observations_and_commands_equal_policy_core(rendering, card):
    rng = np.random.default_rng(1)
    actions = [rng.normal(0.0, 1.5, 3).astype(np.float32) for _ in range(6)]
    core = PolicyCore(card, lambda inputs: ScriptedRuntime(actions), node_limits(card, EXACT))
    env = ReachEnv(card, EXACT, NOMINAL, seed=2)
    try:
        for raw in actions:
            inputs = env.observation()
            core.set_image(env.renderer.tile(env.slot), 'rgb8')
            command = core.step(env.joint_pos, env.joint_vel)
            for name, array in core.tick.inputs.items():
                np.testing.assert_array_equal(inputs[name], array)
            env.step(raw)
            np.testing.assert_allclose(env.last_command, command, atol=1e-12)
        # The safety filter binds: commands move at most max_joint_step per tick.
        assert np.all(np.abs(env.last_command) < 3.0)
    finally:
        env.close()


def test_linear_command_equals_the_twin_trajectory():
    pytest.importorskip('rclpy')
    twin_node = pytest.importorskip('mujoco_twin.twin_node')
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
    names = ('shoulder_pan_joint', 'shoulder_lift_joint', 'elbow_joint')
    end = [0.3, -0.2, 1.1]
    msg = JointTrajectory(joint_names=list(names), points=[JointTrajectoryPoint(
        positions=end, time_from_start=Duration(sec=0, nanosec=50_000_000))])
    begin = np.array([0.1, 0.4, -0.5])
    planned = twin_node.plan_trajectory(msg, 7.0, begin, names)
    ours = LinearCommand(7.0, begin, end, 0.05)
    for t in np.arange(6.99, 7.07, 0.002):
        np.testing.assert_allclose(ours.sample(t), planned.sample(t), atol=1e-12)


def test_expert_command_steps_towards_the_goal(card):
    q = np.array([0.0, 0.3, -0.6])
    goal = np.array([0.05, 1.0, -2.6])
    command = ActionMapper(card).map(expert_raw_action(q, goal, card, 0.1).astype(np.float32))
    np.testing.assert_allclose(command, [0.05, 0.4, -0.7], atol=1e-6)


def test_randomization_changes_and_restores(card):
    sim = ReachArmSim()
    nominal = mujoco.MjModel.from_xml_path(sim.config.model_path)
    randomizer = ModelRandomizer(sim.model, RandomizationConfig())
    randomizer.apply(np.random.default_rng(0))
    target = sim.model.geom('target_geom').id
    assert not np.allclose(sim.model.light_diffuse, nominal.light_diffuse)
    assert abs(sim.model.geom_size[target, 0] / nominal.geom_size[target, 0] - 1.0) <= 0.015
    assert np.allclose(sim.model.actuator_biasprm[:, 1], -sim.model.actuator_gainprm[:, 0])
    randomizer.restore()
    for name in ('light_diffuse', 'geom_rgba', 'geom_size', 'cam_pos', 'cam_quat',
                 'actuator_gainprm', 'dof_damping', 'dof_frictionloss'):
        np.testing.assert_array_equal(getattr(sim.model, name), getattr(nominal, name))


def test_expert_reaches_every_target(rendering, card):
    env = ReachEnv(card, TaskConfig(), RandomizationConfig(), seed=3)
    try:
        for episode in range(4):
            env.reset(seed=40 + episode)
            for _ in range(env.task.episode_ticks):
                env.observation()
                result = env.step(expert_raw_action(env.joint_pos, env.goal, card, 0.1))
            assert result.done and result.final_distance < 0.01
    finally:
        env.close()


def test_worker_processes_equal_in_process(rendering, card_path):
    task = TaskConfig(episode_ticks=3)
    results = []
    for workers in (0, 2):
        env = BatchEnv(str(card_path), 2, workers, task, RandomizationConfig(), seed=4)
        try:
            env.reset(seeds=[11, 12])
            for k in range(3):
                env.step(np.full((2, 3), 0.2 * k, dtype=np.float32))
            results.append({k: getattr(env.arrays, k).copy() for k in (
                'obs', 'image', 'goal', 'target', 'done', 'final_distance')})
        finally:
            env.close()
    for key, value in results[0].items():
        np.testing.assert_array_equal(value, results[1][key], err_msg=key)
    assert results[0]['done'].all()  # the 3-tick episodes ended at the third step


def test_make_core_matches_node_defaults(card_path, card):
    core = make_core(card_path.with_suffix('.onnx'), TaskConfig())
    assert core.card == card
    np.testing.assert_allclose(core.limits.max_step, 0.1)
