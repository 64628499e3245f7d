"""Window attention computes the paper's SoftMax(Q K^T / sqrt(d) + B + mask) V, whatever kernel runs it."""

from __future__ import annotations

import pytest
import torch

from lpasrn.models.swinir import WindowAttention, shifted_window_mask, window_partition


def paper_attention(attention: WindowAttention, windows: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The formula step by step with explicit matrix products, one window at a time."""
    batch, num_windows, tokens, channels = windows.shape
    heads, head_dim = attention.num_heads, channels // attention.num_heads
    q, k, v = attention.qkv(windows).view(batch, num_windows, tokens, 3, heads, head_dim).permute(3, 0, 1, 4, 2, 5)
    scores = q @ k.transpose(-2, -1) / head_dim**0.5 + attention.relative_position_bias()
    if mask is not None:
        scores = scores + mask  # [num_windows, 1, N, N] against [B, num_windows, heads, N, N]
    out = scores.softmax(-1) @ v
    return attention.proj(out.transpose(2, 3).reshape(batch, num_windows, tokens, channels))


@pytest.mark.parametrize(("window", "shifted"), [(4, False), (4, True), (6, True)])
def test_window_attention_is_the_papers_formula(window: int, shifted: bool) -> None:
    torch.manual_seed(0)
    attention = WindowAttention(dim=12, window_size=window, num_heads=3)
    torch.nn.init.normal_(attention.relative_position_bias_table, std=0.5)
    height, width = 2 * window, 3 * window
    windows = window_partition(torch.randn(2, height, width, 12), window)
    mask = shifted_window_mask(height, width, window, window // 2, torch.device("cpu")) if shifted else None
    torch.testing.assert_close(attention(windows, mask), paper_attention(attention, windows, mask))
