"""The speed switches of `train:` (bf16 autocast, channels-last, torch.compile), in one place so the engine and
`bench/gpu.py` apply exactly the same thing: what the bench measures is what a run with the switch gets.

Compilation covers the tensor-only parts (the generator's RSTBs, the OCR's encoder): their callers pass lists of
strings (texts, layouts) that would make torch.compile recompile for every batch. `nn.Module.compile` compiles in
place, so parameter names, checkpoints and DDP stay as they are.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import TypeVar

import torch
from torch import nn

from lpasrn.config import TrainConfig

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def bf16_enabled(device: torch.device, bf16: bool | None) -> bool:
    """`train.bf16`: null means on a GPU only; on the CPU bf16 is used only when asked for."""
    return device.type == "cuda" if bf16 is None else bf16


def autocast(device: torch.device, bf16: bool | None) -> AbstractContextManager:
    if bf16_enabled(device, bf16):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def compile_targets(system: nn.Module) -> list[nn.Module]:
    """The modules `train.compile` compiles: every RSTB of the generator and the OCR's encoder."""
    targets: list[nn.Module] = []
    generator, ocr = getattr(system, "generator", None), getattr(system, "ocr", None)
    if generator is not None:
        targets += list(generator.layers)
    if ocr is not None and isinstance(getattr(ocr, "encoder", None), nn.Module):
        targets.append(ocr.encoder)
    return targets


def apply_model_switches(system: ModuleT, train: TrainConfig) -> ModuleT:
    """channels-last and compilation, in place, before the model is moved and wrapped for DDP."""
    if train.channels_last:
        system.to(memory_format=torch.channels_last)
    if train.compile:
        for module in compile_targets(system):
            module.compile()
    return system


def to_device(images: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """An image batch on the device, in the memory format the convolutions were given (4-D batches; a multi-frame
    stack [B, F, C, H, W] stays as it is: the generator folds its frames before the first convolution)."""
    images = images.to(device, non_blocking=True)
    return images.contiguous(memory_format=torch.channels_last) if channels_last and images.dim() == 4 else images
