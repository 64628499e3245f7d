"""SwinIR for classical super-resolution as the paper describes it (Liang et al., "SwinIR: Image Restoration Using
Swin Transformer", ICCVW 2021, section 3), written from that description as the yardstick of
`bench/generator_vs_reference.py`; nothing here is imported by lpasrn.

It computes what the paper writes, step by step and in the straightforward layout: tokens as [B, H*W, C], windows
as [B*num_windows, M*M, C], attention as SoftMax(Q K^T / sqrt(d) + B) V with explicit matrix products, the cyclic
shift with a -100 mask between regions that were not neighbours, and a 3x3 convolution at the end of every RSTB
(tokens unflattened to an image and back). The input is reflect-padded to a multiple of the window and the output
cropped. Parameter names are those of the published checkpoints, so the bench loads glyphray's weights into it and
checks that both networks compute the same image before timing them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MASK_VALUE = -100.0


def to_windows(image: Tensor, size: int) -> Tensor:
    """[B, H, W, C] -> [B * (H/M) * (W/M), M*M, C]."""
    b, h, w, c = image.shape
    return image.view(b, h // size, size, w // size, size, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, size * size, c)


def from_windows(windows: Tensor, size: int, h: int, w: int) -> Tensor:
    """[B * (H/M) * (W/M), M*M, C] -> [B, H, W, C]."""
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // size) * (w // size))
    return windows.view(b, h // size, w // size, size, size, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


def shift_mask(h: int, w: int, size: int, shift: int) -> Tensor:
    """[num_windows, M*M, M*M]: 0 inside one region of the shifted image, -100 across regions."""
    labels = torch.zeros(1, h, w, 1)
    region = 0
    for rows in (slice(0, h - size), slice(h - size, h - shift), slice(h - shift, h)):
        for cols in (slice(0, w - size), slice(w - size, w - shift), slice(w - shift, w)):
            labels[:, rows, cols, :] = region
            region += 1
    windows = to_windows(labels, size).squeeze(-1)  # [num_windows, M*M]
    different = windows.unsqueeze(1) - windows.unsqueeze(2)
    return different.ne(0).float() * MASK_VALUE


class WindowAttention(nn.Module):
    """Multi-head self-attention within an M x M window plus a learned relative position bias B."""

    def __init__(self, dim: int, size: int, heads: int):
        super().__init__()
        self.size, self.heads, self.scale = size, heads, (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * size - 1) ** 2, heads))
        ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        points = torch.stack([ys.reshape(-1), xs.reshape(-1)], dim=1)  # [M*M, 2]
        delta = points.unsqueeze(1) - points.unsqueeze(0) + (size - 1)  # [M*M, M*M, 2], each in [0, 2M-2]
        self.register_buffer(
            "relative_position_index", delta[..., 0] * (2 * size - 1) + delta[..., 1], persistent=False
        )
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        n_windows_total, tokens, dim = x.shape
        q, k, v = self.qkv(x).view(n_windows_total, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        scores = (q * self.scale) @ k.transpose(-2, -1)  # [B*nW, heads, N, N]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        scores = scores + bias.view(tokens, tokens, self.heads).permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            windows = mask.shape[0]
            scores = scores.view(-1, windows, self.heads, tokens, tokens) + mask.unsqueeze(1).unsqueeze(0)
            scores = scores.view(-1, self.heads, tokens, tokens)
        out = scores.softmax(dim=-1) @ v  # [B*nW, heads, N, d]
        return self.proj(out.transpose(1, 2).reshape(n_windows_total, tokens, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinLayer(nn.Module):
    """STL: X = MSA(LN(X)) + X; X = MLP(LN(X)) + X, on regular or (shift > 0) shifted windows."""

    def __init__(self, dim: int, heads: int, size: int, shift: int, mlp_ratio: float):
        super().__init__()
        self.size, self.shift = size, shift
        self.norm1, self.attn = nn.LayerNorm(dim), WindowAttention(dim, size, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, h: int, w: int, mask: Tensor | None) -> Tensor:
        b, _, c = x.shape
        y = self.norm1(x).view(b, h, w, c)
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), dims=(1, 2))
        y = from_windows(self.attn(to_windows(y, self.size), mask if self.shift else None), self.size, h, w)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), dims=(1, 2))
        x = x + y.reshape(b, h * w, c)
        return x + self.mlp(self.norm2(x))


class ResidualGroup(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, size: int, mlp_ratio: float):
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinLayer(dim, heads, size, 0 if i % 2 == 0 else size // 2, mlp_ratio) for i in range(depth)
        )


class RSTB(nn.Module):
    """Residual Swin Transformer Block: L Swin layers, a 3x3 convolution, and the block's input added back."""

    def __init__(self, dim: int, depth: int, heads: int, size: int, mlp_ratio: float):
        super().__init__()
        self.residual_group = ResidualGroup(dim, depth, heads, size, mlp_ratio)
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: Tensor, h: int, w: int, mask: Tensor) -> Tensor:
        y = x
        for layer in self.residual_group.blocks:
            y = layer(y, h, w, mask)
        b, _, c = y.shape
        image = y.transpose(1, 2).reshape(b, c, h, w)  # unflatten the tokens for the convolution
        return self.conv(image).flatten(2).transpose(1, 2) + x


class PatchNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)


class ReferenceSwinIR(nn.Module):
    """Shallow 3x3 conv -> K RSTBs -> LN -> 3x3 conv (+ shallow features) -> conv + LeakyReLU -> pixel shuffle
    -> 3x3 conv: the classical-SR reconstruction of the paper, with its mean shift."""

    def __init__(
        self,
        scale: int,
        dim: int,
        depths: list[int],
        heads: int,
        size: int,
        mlp_ratio: float,
        num_feat: int = 64,
        rgb_mean: tuple[float, float, float] = (0.4488, 0.4371, 0.4040),
    ):
        super().__init__()
        self.scale, self.size = scale, size
        self.register_buffer("mean", torch.tensor(rgb_mean).view(1, 3, 1, 1), persistent=False)
        self.conv_first = nn.Conv2d(3, dim, 3, padding=1)
        self.patch_embed = PatchNorm(dim)
        self.layers = nn.ModuleList(RSTB(dim, depth, heads, size, mlp_ratio) for depth in depths)
        self.norm = nn.LayerNorm(dim)
        self.conv_after_body = nn.Conv2d(dim, dim, 3, padding=1)
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(dim, num_feat, 3, padding=1), nn.LeakyReLU(inplace=True))
        steps = [2] * int(math.log2(scale)) if scale & (scale - 1) == 0 else [3]
        self.upsample = nn.Sequential(
            *[
                module
                for factor in steps
                for module in (nn.Conv2d(num_feat, factor * factor * num_feat, 3, padding=1), nn.PixelShuffle(factor))
            ]
        )
        self.conv_last = nn.Conv2d(num_feat, 3, 3, padding=1)
        self._masks: dict[tuple[int, int], Tensor] = {}

    def forward(self, lr: Tensor) -> Tensor:
        h0, w0 = lr.shape[-2:]
        x = F.pad(lr - self.mean, (0, -w0 % self.size, 0, -h0 % self.size), mode="reflect")
        h, w = x.shape[-2:]
        if (h, w) not in self._masks:
            self._masks[(h, w)] = shift_mask(h, w, self.size, self.size // 2).to(lr.device)
        shallow = self.conv_first(x)
        tokens = self.patch_embed.norm(shallow.flatten(2).transpose(1, 2))  # [B, H*W, C]
        for layer in self.layers:
            tokens = layer(tokens, h, w, self._masks[(h, w)])
        deep = self.norm(tokens).transpose(1, 2).reshape(shallow.shape)
        out = self.conv_last(self.upsample(self.conv_before_upsample(self.conv_after_body(deep) + shallow)))
        return out[..., : h0 * self.scale, : w0 * self.scale] + self.mean
