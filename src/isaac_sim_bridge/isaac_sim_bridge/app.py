"""
Standalone Isaac Sim application: open a USD stage and bridge it to ROS 2.

Run with Isaac Sim's interpreter::

    <isaac_sim_root>/python.sh app.py --usd robot.usd --config isaac_sim_bridge.yaml \
        [--headless] [--max-steps N]

Order matters: SimulationApp must exist before any other omni / isaacsim import
(Isaac Sim docs, "Python Environment" / standalone examples), then the ROS 2 bridge
extension is enabled, the stage opened, the graph built, and the simulation stepped.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
import sys
from typing import Optional, Sequence

if not __package__:
    # Started as a script by Isaac Sim's python.sh: make the package importable from
    # wherever colcon installed it (Isaac Sim's Python is not the ROS one).
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from isaac_sim_bridge.graph_spec import (  # noqa: E402
    BridgeConfig, BridgeConfigError, build_graph_spec, load_config)
import yaml  # noqa: E402

ROS2_BRIDGE_EXTENSION = 'isaacsim.ros2.bridge'


class StageError(RuntimeError):
    """The USD stage could not be opened or lacks a prim the config names."""


@dataclass(frozen=True)
class AppArgs:
    """Command line of the app."""

    usd_path: Path
    config_path: Path
    headless: bool
    max_steps: int


def parse_args(argv: Optional[Sequence[str]] = None) -> AppArgs:
    """Parse the command line; argparse exits with status 2 on bad usage."""
    parser = argparse.ArgumentParser(
        prog='isaac_sim_bridge',
        description='Open a USD stage in Isaac Sim and publish it on ROS 2 through an '
                    'OmniGraph action graph built from a YAML config.')
    parser.add_argument('--usd', required=True, type=Path, dest='usd_path',
                        help='USD stage with the robot, its camera and a physics scene')
    parser.add_argument('--config', required=True, type=Path, dest='config_path',
                        help='bridge config YAML (see config/isaac_sim_bridge.yaml)')
    parser.add_argument('--headless', action='store_true',
                        help='run without the GUI (rendering still runs for the camera)')
    parser.add_argument('--max-steps', type=int, default=0, dest='max_steps',
                        help='stop after this many physics steps (0: run until closed)')
    ns = parser.parse_args(argv)
    if ns.max_steps < 0:
        parser.error(f'--max-steps must be >= 0, got {ns.max_steps}')
    return AppArgs(usd_path=ns.usd_path, config_path=ns.config_path,
                   headless=ns.headless, max_steps=ns.max_steps)


def load_config_file(path: Path) -> BridgeConfig:
    """Read and validate the bridge config YAML; errors name the file and the key."""
    try:
        data = yaml.safe_load(path.read_text(encoding='utf-8'))
    except OSError as err:
        raise BridgeConfigError(f'{path}: cannot read bridge config ({err})') from err
    except yaml.YAMLError as err:
        raise BridgeConfigError(f'{path}: not valid YAML ({err})') from err
    try:
        return load_config(data)
    except BridgeConfigError as err:
        raise BridgeConfigError(f'{path}: {err}') from err


def _open_stage(app, usd_path: Path, config: BridgeConfig) -> None:
    import omni.usd
    from isaacsim.core.utils.stage import is_stage_loading, open_stage

    if not open_stage(str(usd_path)):
        raise StageError(f'{usd_path}: Isaac Sim could not open the USD stage')
    while is_stage_loading():
        app.update()
    stage = omni.usd.get_context().get_stage()
    required = {'camera.prim_path': config.camera.prim_path,
                'robot.articulation_prim': config.robot.articulation_prim}
    if config.tf.enabled:
        required['tf.parent_prim'] = config.tf.parent_prim
        required.update({f'tf.target_prims[{i}]': p
                         for i, p in enumerate(config.tf.target_prims)})
    for key, prim_path in required.items():
        if not stage.GetPrimAtPath(prim_path).IsValid():
            raise StageError(f'{usd_path}: no prim at {prim_path} (config key {key!r})')


def run(app, args: AppArgs, config: BridgeConfig) -> None:
    """Enable the bridge, open the stage, build the graph, then play and step."""
    from isaacsim.core.utils.extensions import enable_extension

    enable_extension(ROS2_BRIDGE_EXTENSION)
    app.update()
    _open_stage(app, args.usd_path, config)

    from isaacsim.core.api import SimulationContext

    from isaac_sim_bridge.apply_graph import apply_graph

    sim = SimulationContext(physics_dt=config.physics_dt, rendering_dt=config.rendering_dt)
    apply_graph(build_graph_spec(config))
    app.update()
    sim.initialize_physics()
    sim.play()
    steps = 0
    try:
        while app.is_running() and (args.max_steps == 0 or steps < args.max_steps):
            # render=True even headless: the camera helpers publish rendered frames.
            sim.step(render=True)
            steps += 1
    finally:
        sim.stop()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the process exit status."""
    args = parse_args(argv)
    try:
        # Validate before starting Isaac Sim, which takes a minute to come up.
        config = load_config_file(args.config_path)
        if not args.usd_path.is_file():
            raise StageError(f'{args.usd_path}: USD stage not found')
    except (BridgeConfigError, StageError) as err:
        print(f'isaac_sim_bridge: {err}', file=sys.stderr)
        return 2

    from isaacsim import SimulationApp

    app = SimulationApp({'headless': args.headless})
    status = 0
    try:
        run(app, args, config)
    except KeyboardInterrupt:
        print('isaac_sim_bridge: interrupted, shutting down', file=sys.stderr)
    except StageError as err:
        print(f'isaac_sim_bridge: {err}', file=sys.stderr)
        status = 1
    finally:
        app.close()
    return status


if __name__ == '__main__':
    sys.exit(main())
