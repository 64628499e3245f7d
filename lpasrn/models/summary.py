"""Text tables of models: where the parameters of a generator and an OCR sit, and every registered model."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lpasrn.models.ocr import plate_ocr
from lpasrn.models.registry import create_model, list_models
from lpasrn.models.swinir import SwinIRGenerator


def count_parameters(module: nn.Module, prefixes: Sequence[str] = ("",)) -> int:
    """Parameters whose names start with any of `prefixes` (all of them by default)."""
    return sum(param.numel() for name, param in module.named_parameters() if name.startswith(tuple(prefixes)))


def _generator_rows(generator: SwinIRGenerator) -> list[tuple[str, int]]:
    rows = [("shallow conv (conv_first)", count_parameters(generator, ["conv_first."]))]
    if generator.frame_fusion is not None:
        rows.append(("frame fusion (frame_fusion)", count_parameters(generator, ["frame_fusion."])))
    rows += [
        (f"RSTB {index} (layers.{index})", count_parameters(generator, [f"layers.{index}."]))
        for index in range(len(generator.layers))
    ]
    rows += [
        ("body norms + conv_after_body", count_parameters(generator, ["patch_embed.", "norm.", "conv_after_body."])),
        ("character pyramid attention", count_parameters(generator, ["pyramid_attention."])),
        (
            "upsampler (conv_before_upsample, upsample)",
            count_parameters(generator, ["conv_before_upsample.", "upsample."]),
        ),
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


def describe_ocr(ocr: nn.Module) -> str:
    """What every registered OCR has in common: the plate size it reads and its characters."""
    interface = plate_ocr(ocr)
    return f"input {interface.img_size[0]}x{interface.img_size[1]}, {len(interface.charset)} characters"


def summarize(generator: SwinIRGenerator, ocr: nn.Module, ocr_name: str, lr_size: tuple[int, int]) -> str:
    """Parameter counts per component and the generator's output shape for one LR image of `lr_size`."""
    with torch.no_grad():
        output = generator.eval()(torch.zeros(1, 3, *lr_size))
    lines = _table(f"generator: SwinIR {generator.describe()}", _generator_rows(generator), count_parameters(generator))
    lines.append(f"  output for LR {lr_size[0]}x{lr_size[1]}: {list(output.shape)}")
    lines.append("")
    lines += _table(f"OCR: {ocr_name}, {describe_ocr(ocr)}", _ocr_rows(ocr), count_parameters(ocr))
    return "\n".join(lines)


def registry_table(scale: int = 2) -> str:
    """One line per registered model: name, kind, parameters (generators up-scaling by `scale`), settings."""
    rows: list[tuple[str, str, int, str]] = []
    for name in list_models("generator"):
        generator = create_model(name, scale=scale)
        assert isinstance(generator, SwinIRGenerator)  # every registered generator is a SwinIR preset
        rows.append((name, "generator", count_parameters(generator), generator.describe()))
    for name in list_models("ocr"):
        ocr = create_model(name)
        rows.append((name, "ocr", count_parameters(ocr), describe_ocr(ocr)))
    width = max(len(name) for name, *_ in rows)
    lines = [f"{'model':<{width}}  {'kind':<9}  {'parameters':>12}  settings"]
    lines += [f"{name:<{width}}  {kind:<9}  {count:>12,}  {settings}" for name, kind, count, settings in rows]
    return "\n".join(lines)
