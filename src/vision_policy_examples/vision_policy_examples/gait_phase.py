"""
``gait_phase`` of unitree_rl_lab's humanoid and quadruped tasks: the README's walk-through.

Training: phase = (episode steps x step_dt) mod period / period; the term is
[sin(2 pi phase), cos(2 pi phase)]. On the robot the episode starts when the
policy starts (activate, or after a hold), so the term counts its own ticks.
"""

import math

from vision_policy.observation import Term
from vision_policy.registry import ObservationTerm


def make_gait_phase(card, params) -> Term:
    """Phase clock over params['period'] seconds, stepped by the card's control_dt."""
    period, steps = float(params['period']), [0]

    def compute(sample, out) -> None:
        phase = (steps[0] * card.control_dt) % period / period
        out[0], out[1] = math.sin(2 * math.pi * phase), math.cos(2 * math.pi * phase)
        steps[0] += 1

    def reset() -> None:
        steps[0] = 0
    return Term((2,), compute, reset)


GAIT_PHASE = ObservationTerm(
    'gait_phase', make_gait_phase, width=2,
    isaaclab_funcs=('unitree_rl_lab.tasks.locomotion.mdp.observations:gait_phase',),
    import_params=lambda params, env: {'period': params['period']})
