"""Fusing a track's LR frames into one feature map, pixel by pixel, before the generator's body.

The frames of a track show the same plate a fraction of a pixel apart, each with its own blur, noise and JPEG
damage. Rather than reading each frame and voting afterwards, the multi-frame generator scores every frame at
every position against the reference frame (the one whose geometry the SR image keeps), turns the scores into
weights with a softmax over the frames, and sums the frames' shallow features with them. A frame ruined by
compression or blur gets little weight where it is ruined, and any number of frames works, one included (its
weight is then 1, and the generator computes what a single-frame one would).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class FrameFusion(nn.Module):
    """[B, K, C, H, W] shallow features, reference first -> per-pixel weights [B, K, 1, H, W] summing to 1."""

    def __init__(self, channels: int, hidden: int = 16):
        super().__init__()
        # Each frame is judged beside the reference, [frame, reference, |frame - reference|], mixed per pixel
        # (1x1) and then over a 3x3 neighbourhood into one score: a few percent of the generator's cost.
        self.score = nn.Sequential(
            nn.Conv2d(3 * channels, hidden, 1), nn.LeakyReLU(0.1, inplace=True), nn.Conv2d(hidden, 1, 3, 1, 1)
        )
        # Zero scores at the start: the frames are first averaged, and the weighting is learnt from there.
        head = self.score[-1]
        assert isinstance(head, nn.Conv2d) and head.bias is not None
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)

    def forward(self, features: Tensor) -> Tensor:
        batch, frames, channels, height, width = features.shape
        reference = features[:, :1].expand_as(features)
        pairs = torch.cat([features, reference, (features - reference).abs()], dim=2)
        scores = self.score(pairs.reshape(batch * frames, 3 * channels, height, width))
        return scores.view(batch, frames, 1, height, width).softmax(dim=1)
