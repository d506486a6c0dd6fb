"""
The image student: a CNN with a target keypoint, plus a proprioceptive MLP.

Inputs follow the card: ``obs`` [N, 9] and ``image`` [N, 3, 64, 64] (NCHW, Isaac Lab
normalisation). The target is about 2 px wide at 64x64, so:

- channel 0 of a 32x32 feature map is a target heatmap: its spatial softmax gives the
  target's image position with sub-pixel precision (Levine et al.'s keypoints), and in
  training a cross-entropy to the target's projected pixel teaches it (privileged);
- per-channel means keep the target's apparent size, the only depth cue, and a strided
  branch with a flattened linear layer sees the whole scene (arm included);
- an auxiliary head estimates the target's 3D position (supervised in training) and
  feeds the action MLP, so the actions are a smooth function of (estimate, joint state).

The exported graph is forward(obs, image) -> raw actions.
"""
from __future__ import annotations

import torch
from torch import nn


class SpatialSoftmax(nn.Module):
    """Per channel: the softmax-weighted mean (x, y) in [-1, 1] of a feature map."""

    def __init__(self, height: int, width: int):
        super().__init__()
        ys, xs = torch.meshgrid(torch.linspace(-1.0, 1.0, height),
                                torch.linspace(-1.0, 1.0, width), indexing='ij')
        self.register_buffer('xs', xs.reshape(-1))
        self.register_buffer('ys', ys.reshape(-1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Map [N, C, H, W] features to [N, 2C] keypoint coordinates (all x, then all y)."""
        attention = torch.softmax(features.flatten(2), dim=-1)
        return torch.cat([(attention * self.xs).sum(-1), (attention * self.ys).sum(-1)], dim=-1)


class StudentPolicy(nn.Module):
    """(obs, image) -> raw joint position actions, as the card's inputs and action say."""

    def __init__(self, obs_dim: int = 9, num_actions: int = 3, image_size: int = 64,
                 channels: int = 32, hidden: int = 256):
        super().__init__()
        half, quarter = image_size // 2, image_size // 4
        self.heat_size = half
        self.maps = nn.Sequential(
            nn.Conv2d(3, channels, 5, stride=2, padding=2), nn.ELU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        self.keypoints = SpatialSoftmax(half, half)
        self.trunk = nn.Sequential(
            nn.ELU(), nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.ELU(),
            nn.Flatten(), nn.Linear(channels * quarter * quarter, hidden), nn.ELU(),
        )
        features = hidden + 3 * channels
        self.target_head = nn.Sequential(nn.Linear(features, hidden), nn.ELU(),
                                         nn.Linear(hidden, 3))
        self.head = nn.Sequential(
            nn.Linear(features + 3 + obs_dim, hidden), nn.ELU(),
            nn.Linear(hidden, hidden), nn.ELU(),
            nn.Linear(hidden, num_actions),
        )

    def forward_all(self, obs: torch.Tensor, image: torch.Tensor) -> tuple:
        """Return raw actions, the target estimate (m) and the heatmap logits [N, H*W]."""
        maps = self.maps(image)
        features = torch.cat([self.trunk(maps), self.keypoints(maps), maps.mean(dim=(2, 3))],
                             dim=-1)
        target = self.target_head(features)
        actions = self.head(torch.cat([features, target, obs], dim=-1))
        return actions, target, maps[:, 0].flatten(1)

    def forward(self, obs: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Raw actions for a batch (the exported graph)."""
        return self.forward_all(obs, image)[0]


def heatmap_target(pixel: torch.Tensor, image_size: int, heat_size: int,
                   sigma: float = 0.75) -> torch.Tensor:
    """
    Return [N, heat_size**2] Gaussian targets around pixel [N, 2] (x, y in image pixels).

    Image pixel centres map to heatmap cells as the stride-2 convolution sees them:
    cell = (pixel + 0.5) * heat_size / image_size - 0.5; sigma is in cells.
    """
    cell = (pixel + 0.5) * (heat_size / image_size) - 0.5
    grid = torch.arange(heat_size, device=pixel.device, dtype=pixel.dtype)
    gx = torch.exp(-(grid[None, :] - cell[:, 0:1]) ** 2 / (2 * sigma ** 2))
    gy = torch.exp(-(grid[None, :] - cell[:, 1:2]) ** 2 / (2 * sigma ** 2))
    heat = gy[:, :, None] * gx[:, None, :]
    return (heat / heat.sum(dim=(1, 2), keepdim=True)).flatten(1)


def build() -> StudentPolicy:
    """Build the student with the card's sizes (vision_policy_export --factory)."""
    return StudentPolicy()
