"""Differentiable SSIM and PSNR on [0, 1] images (Gaussian window 11, sigma 1.5, as Wang et al.)."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

_C1 = 0.01**2
_C2 = 0.03**2


@functools.lru_cache(maxsize=8)
def _gaussian_window(size: int, sigma: float, channels: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    kernel_1d = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel_1d /= kernel_1d.sum()
    kernel_2d = torch.outer(kernel_1d, kernel_1d)
    return kernel_2d.expand(channels, 1, size, size).to(device=device, dtype=dtype).contiguous()


def ssim(
    x: torch.Tensor, y: torch.Tensor, window_size: int = 11, sigma: float = 1.5, reduction: str = "mean"
) -> torch.Tensor:
    """Structural similarity of two [B, C, H, W] batches in [0, 1]; 'none' gives one value per image.

    The window shrinks to the image for tiny inputs (an LR plate can be smaller than 11 pixels high).
    """
    channels = x.shape[1]
    size = min(window_size, x.shape[-2], x.shape[-1])
    size -= (size + 1) % 2  # odd
    window = _gaussian_window(size, sigma, channels, str(x.device), x.dtype)
    conv = functools.partial(F.conv2d, weight=window, groups=channels)
    mu_x, mu_y = conv(x), conv(y)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    var_x = conv(x * x) - mu_xx
    var_y = conv(y * y) - mu_yy
    cov_xy = conv(x * y) - mu_xy
    ssim_map = ((2 * mu_xy + _C1) * (2 * cov_xy + _C2)) / ((mu_xx + mu_yy + _C1) * (var_x + var_y + _C2))
    per_image = ssim_map.flatten(1).mean(1)
    return per_image.mean() if reduction == "mean" else per_image


def psnr(x: torch.Tensor, y: torch.Tensor, reduction: str = "mean", eps: float = 1e-10) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of [B, C, H, W] batches in [0, 1]."""
    mse = (x.float() - y.float()).pow(2).flatten(1).mean(1)
    per_image = 10 * torch.log10(1.0 / (mse + eps))
    return per_image.mean() if reduction == "mean" else per_image
