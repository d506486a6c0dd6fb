"""
The example vision policy's network: a small CNN on a 64x64 RGB image plus a proprio MLP.

The shape follows rsl_rl's CNN actor export: the proprioceptive group ``obs``
and the camera group ``image`` ([1, 3, 64, 64], NCHW) are separate inputs.
"""

from __future__ import annotations

import torch
from torch import nn


class ReachPolicy(nn.Module):
    """Image encoder + proprioceptive MLP -> joint position actions."""

    def __init__(self, obs_dim: int = 9, num_actions: int = 3, image_channels: int = 3):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(image_channels, 16, 5, stride=2, padding=2), nn.ELU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ELU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ELU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        )
        self.head = nn.Sequential(
            nn.Linear(32 * 4 + obs_dim, 128), nn.ELU(),
            nn.Linear(128, 64), nn.ELU(),
            nn.Linear(64, num_actions),
        )

    def forward(self, obs: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Actions for one batch of observations and images."""
        return self.head(torch.cat([self.encoder(image), obs], dim=-1))


def build(seed: int = 7) -> ReachPolicy:
    """Build the example network with fixed, seeded random weights."""
    torch.manual_seed(seed)
    return ReachPolicy()
