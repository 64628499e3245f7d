"""Character Pyramid Attention: steer the generator's features towards the strokes of plate characters.

Four ideas, one small module each: stroke detectors (fixed-initialised, learnable edge filters), a gap detector
(columns with little stroke energy lie between characters), a layout-aware positional encoding (which of the
seven slots along the plate's width holds a letter and which a digit), and self-attention at scales 1, 1/2
and 1/4. Their result is added back through a small learnable scale, so at initialisation the module is
nearly the identity and training starts from plain SwinIR features.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from timm.layers import Attention
from torch import Tensor, nn

from lpasrn.data.charset import LAYOUT_PATTERNS, PLATE_LENGTH, canonical_layout, letter_slot_mask

PYRAMID_SCALES = (1.0, 0.5, 0.25)
FUSION_INIT_SCALE = 1e-3

# Sobel-like 3x3 kernels: horizontal strokes, vertical strokes, and the two diagonals.
STROKE_KERNELS = (
    torch.tensor(
        [
            [[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]],
            [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]],
            [[-2.0, -1.0, 0.0], [-1.0, 0.0, 1.0], [0.0, 1.0, 2.0]],
            [[0.0, -1.0, -2.0], [1.0, 0.0, -1.0], [2.0, 1.0, 0.0]],
        ]
    )
    / 4.0
)


class StrokeDetector(nn.Module):
    """Per-channel edge responses in four directions, projected back to the feature width.

    Returns the stroke features and a one-channel stroke-energy map (mean absolute response) for gap finding.
    """

    def __init__(self, channels: int):
        super().__init__()
        directions = len(STROKE_KERNELS)
        self.filters = nn.Conv2d(channels, directions * channels, 3, padding=1, groups=channels, bias=False)
        self.project = nn.Conv2d(directions * channels, channels, 1)
        with torch.no_grad():
            self.filters.weight.copy_(STROKE_KERNELS.repeat(channels, 1, 1).unsqueeze(1))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        responses = self.filters(x)
        return self.project(F.gelu(responses)), responses.abs().mean(dim=1, keepdim=True)


class GapDetector(nn.Module):
    """Column-wise character presence in (0, 1): low where a column's stroke energy is low (gaps)."""

    def __init__(self, kernel_size: int = 5, sharpness: float = 4.0):
        super().__init__()
        self.profile = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2)
        assert self.profile.bias is not None  # built with a bias (the default)
        with torch.no_grad():  # start as a smoothed threshold at half the plate's mean energy
            self.profile.weight.fill_(sharpness / kernel_size)
            self.profile.bias.fill_(-sharpness / 2)

    def forward(self, energy: Tensor) -> Tensor:
        """energy: [B, 1, H, W] -> presence gate [B, 1, 1, W]."""
        column = energy.mean(dim=2)  # [B, 1, W]
        column = column / (column.mean(dim=-1, keepdim=True) + 1e-6)
        return torch.sigmoid(self.profile(column)).unsqueeze(2)


class LayoutPositionalEncoding(nn.Module):
    """One vector per character slot (letter/digit kind from the layout + slot position), stretched over width.

    A plate crop holds its seven characters side by side, so slot k covers roughly the k-th seventh of the width.
    """

    layout_slot_kinds: Tensor  # a buffer, registered in __init__

    def __init__(self, channels: int, default_layout: str, num_slots: int = PLATE_LENGTH):
        super().__init__()
        self.layout_names = tuple(LAYOUT_PATTERNS)
        self.default_layout = canonical_layout(default_layout)
        self.slot_kind = nn.Embedding(2, channels)  # 0 = digit slot, 1 = letter slot
        self.slot_position = nn.Embedding(num_slots, channels)
        kinds = [[int(is_letter) for is_letter in letter_slot_mask(name)] for name in self.layout_names]
        self.register_buffer("layout_slot_kinds", torch.tensor(kinds), persistent=False)
        nn.init.trunc_normal_(self.slot_kind.weight, std=0.02)
        nn.init.trunc_normal_(self.slot_position.weight, std=0.02)

    def forward(self, width: int, layouts: Sequence[str] | None = None) -> Tensor:
        """[1 or B, C, 1, width]: one row for the default layout, or one per image of `layouts`."""
        names = [self.default_layout] if layouts is None else [canonical_layout(name) for name in layouts]
        indices = torch.tensor([self.layout_names.index(name) for name in names], device=self.layout_slot_kinds.device)
        slots = self.slot_kind(self.layout_slot_kinds[indices]) + self.slot_position.weight  # [L, slots, C]
        stretched = F.interpolate(slots.transpose(1, 2), size=width, mode="linear", align_corners=False)
        return stretched.unsqueeze(2)


class PooledSelfAttention(nn.Module):
    """Self-attention over the feature map average-pooled by `scale`, returned at the input size.

    Coarser scales let one token cover a whole character, so attention relates characters to each other.
    """

    def __init__(self, channels: int, num_heads: int, scale: float):
        super().__init__()
        self.scale = scale
        self.norm = nn.LayerNorm(channels)
        self.attn = Attention(channels, num_heads=num_heads, qkv_bias=True)

    def forward(self, x: Tensor) -> Tensor:
        height, width = (int(size) for size in x.shape[-2:])  # plain ints, also when traced for ONNX export
        pooled_size = (max(1, round(height * self.scale)), max(1, round(width * self.scale)))
        if pooled_size == (height, width):
            pooled = x
        elif height % pooled_size[0] == 0 and width % pooled_size[1] == 0:  # the same numbers, and ONNX-exportable
            pooled = F.avg_pool2d(x, (height // pooled_size[0], width // pooled_size[1]))
        else:
            pooled = F.adaptive_avg_pool2d(x, pooled_size)
        tokens = pooled.flatten(2).transpose(1, 2)
        attended = self.attn(self.norm(tokens)).transpose(1, 2).reshape_as(pooled)
        if pooled_size == (height, width):
            return attended
        return F.interpolate(attended, size=(height, width), mode="bilinear", align_corners=False)


class CharacterPyramidAttention(nn.Module):
    """Layout-aware, multi-scale character attention, added residually to [B, C, H, W] features."""

    def __init__(
        self, channels: int, num_heads: int, layout: str = "brazilian", scales: Sequence[float] = PYRAMID_SCALES
    ):
        super().__init__()
        self.strokes = StrokeDetector(channels)
        self.gaps = GapDetector()
        self.layout_encoding = LayoutPositionalEncoding(channels, layout)
        self.pyramid = nn.ModuleList(PooledSelfAttention(channels, num_heads, scale) for scale in scales)
        self.fuse = nn.Conv2d(len(scales) * channels, channels, 1)
        self.fuse_scale = nn.Parameter(torch.full((channels,), FUSION_INIT_SCALE))

    def forward(self, x: Tensor, layouts: Sequence[str] | None = None) -> Tensor:
        """`layouts`: one layout name per image ('Brazilian'/'Mercosur'); None uses the configured layout."""
        if layouts is not None and len(layouts) != x.shape[0]:
            raise ValueError(f"got {len(layouts)} layouts for a batch of {x.shape[0]} images")
        strokes, energy = self.strokes(x)
        focused = (x + strokes) * self.gaps(energy) + self.layout_encoding(x.shape[-1], layouts)
        fused = self.fuse(torch.cat([level(focused) for level in self.pyramid], dim=1))
        return x + self.fuse_scale.view(1, -1, 1, 1) * fused
