"""A text table of where the parameters of the generator and the OCR sit, and what the generator outputs."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lpasrn.config import ModelConfig, OCRConfig
from lpasrn.models.ocr import create_ocr
from lpasrn.models.swinir import build_generator


def count_parameters(module: nn.Module, prefixes: Sequence[str] = ("",)) -> int:
    """Parameters whose names start with any of `prefixes` (all of them by default)."""
    return sum(param.numel() for name, param in module.named_parameters() if name.startswith(tuple(prefixes)))


def _generator_rows(generator: nn.Module, num_rstb: int) -> list[tuple[str, int]]:
    rows = [("shallow conv (conv_first)", count_parameters(generator, ["conv_first."]))]
    rows += [(f"RSTB {index} (layers.{index})", count_parameters(generator, [f"layers.{index}."]))
             for index in range(num_rstb)]
    rows += [
        ("body norms + conv_after_body", count_parameters(generator, ["patch_embed.", "norm.", "conv_after_body."])),
        ("character pyramid attention", count_parameters(generator, ["pyramid_attention."])),
        ("upsampler (conv_before_upsample, upsample)",
         count_parameters(generator, ["conv_before_upsample.", "upsample."])),
        ("reconstruction (conv_last)", count_parameters(generator, ["conv_last."])),
    ]
    return rows


def _ocr_rows(ocr: nn.Module) -> list[tuple[str, int]]:
    """One row per top-level part of whichever OCR it is (PARSeq: encoder, decoder, head, ...; slot CNN: encoder,
    head), direct parameters such as PARSeq's position queries included."""
    rows = [(name, count_parameters(ocr, [f"{name}."])) for name, _ in ocr.named_children()]
    rows += [(name, param.numel()) for name, param in ocr.named_parameters(recurse=False)]
    return [(name, count) for name, count in rows if count]


def _table(title: str, rows: list[tuple[str, int]], total: int) -> list[str]:
    width = max(len(name) for name, _ in rows + [("total", 0)])
    lines = [title, f"  {'component':<{width}}  {'parameters':>12}  {'share':>6}"]
    lines += [f"  {name:<{width}}  {count:>12,}  {count / max(total, 1):>6.1%}" for name, count in rows]
    lines.append(f"  {'total':<{width}}  {total:>12,}  {1:>6.1%}")
    return lines


def summarize(cfg_model: ModelConfig, cfg_ocr: OCRConfig, lr_size: tuple[int, int], scale: int) -> str:
    """Parameter counts per component and the generator's output shape for one LR image of `lr_size`.

    The OCR is built without its pretrained weights: counting does not need them.
    """
    generator = build_generator(cfg_model, scale).eval()
    ocr = create_ocr(cfg_ocr.model_type)
    with torch.no_grad():
        output = generator(torch.zeros(1, 3, *lr_size))
    lines = _table(f"generator: SwinIR x{scale}, embed {cfg_model.swinir_embed_dim}, {cfg_model.swinir_num_rstb} RSTB "
                   f"x {cfg_model.swinir_num_blocks_per_rstb} blocks, window {cfg_model.swinir_window_size}",
                   _generator_rows(generator, cfg_model.swinir_num_rstb), count_parameters(generator))
    lines.append(f"  output for LR {lr_size[0]}x{lr_size[1]}: {list(output.shape)}")
    lines.append("")
    lines += _table(f"OCR: {cfg_ocr.model_type}, input {ocr.img_size[0]}x{ocr.img_size[1]}, "
                    f"{len(ocr.charset)} characters", _ocr_rows(ocr), count_parameters(ocr))
    return "\n".join(lines)
