"""The deployable artefact: the generator and the OCR as ONNX graphs (`lpasrn.inference.onnx_reader` runs them).

`export_onnx` writes, into one folder (atomically):

    generator.onnx   lr [B, 3, h, w] (multi-frame: [B, K, 3, h, w]) in [0, 1] -> sr [B, 3, h*s, w*s] in [0, 1]
    ocr.onnx         image [B, 3, h*s, w*s] in [0, 1] -> logits [B, 8, 37] (7 characters + end of text)
    meta.json        sizes, OCR kind and decoding, charset, where the weights came from

Both graphs take any batch size; the image sizes are fixed to the bundle's (`data.lr_size`, `data.scale`). The OCR
graph decodes a fixed-length plate without a loop: the slot CNN's seven classifiers as they are, PARSeq
non-autoregressively (all positions at once) followed by its `refine_iters` cloze refinement rounds. The generator
runs with the pyramid attention's configured layout (`model.pyramid_layout`), as `lpasrn predict` does: on the CPU
recipe the layout given to the generator moved the single-frame rate by 0.2 points at most.

Exported with the TorchScript exporter (`dynamo=False`): the dynamo exporter cannot yet convert SwinIR's 5-D
windowed attention. PARSeq's input resize (bicubic with anti-aliasing, which ONNX `Resize` does not reproduce) is
exported as two constant matrices, the exact linear map PyTorch applies, so the graphs match PyTorch to ~1e-6.
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from experiments.io import atomic_directory
from lpasrn.data.charset import CHARSET, PLATE_LENGTH
from lpasrn.inference.onnx_reader import GENERATOR_FILE, META_FILE, OCR_FILE, ONNX_FORMAT, OnnxPlateReader, require_onnx
from lpasrn.inference.prediction import TorchPlateReader
from lpasrn.models.parseq import PARSeq
from lpasrn.models.slot_ocr import PlateSlotOCR

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 17


# ----------------------------------------------------------------------------------------------------------
# Export-ready modules: fixed sizes and fixed plate length, so every graph is loop-free
# ----------------------------------------------------------------------------------------------------------
def resize_matrix(size_in: int, size_out: int) -> Tensor:
    """[size_out, size_in]: the 1-D bicubic anti-aliased resize of `ocr_input` as a matrix (it is linear)."""
    basis = torch.eye(size_in).view(size_in, 1, 1, size_in)  # one unit impulse per row, along the width
    resized = F.interpolate(basis, size=(1, size_out), mode="bicubic", align_corners=False, antialias=True)
    return resized[:, 0, 0, :].T.contiguous()


class PlateInput(nn.Module):
    """[B, 3, H, W] in [0, 1] -> the OCR's [B, 3, *model_size] in [-1, 1], as `ocr_input` computes it."""

    rows: Tensor  # buffers, registered in __init__ when the sizes differ
    cols_t: Tensor

    def __init__(self, image_size: Sequence[int], model_size: Sequence[int]):
        super().__init__()
        self.resize = tuple(image_size) != tuple(model_size)
        if self.resize:
            self.register_buffer("rows", resize_matrix(int(image_size[0]), int(model_size[0])))
            self.register_buffer("cols_t", resize_matrix(int(image_size[1]), int(model_size[1])).T.contiguous())

    def forward(self, images: Tensor) -> Tensor:
        if self.resize:
            images = torch.matmul(torch.matmul(self.rows, images), self.cols_t).clamp(0.0, 1.0)
        return images * 2.0 - 1.0


class GeneratorGraph(nn.Module):
    """The generator with the output clamped to [0, 1], as every reader here uses it."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, lr: Tensor) -> Tensor:
        return self.generator(lr).clamp(0.0, 1.0)


class SlotOCRGraph(nn.Module):
    def __init__(self, ocr: PlateSlotOCR, image_size: Sequence[int]):
        super().__init__()
        self.ocr = ocr
        self.input = PlateInput(image_size, ocr.img_size)

    def forward(self, images: Tensor) -> Tensor:
        features = self.ocr.encoder(self.input(images))
        return self.ocr._as_tokens(self.ocr.head(features).view(images.shape[0], PLATE_LENGTH, len(CHARSET)))


class PARSeqGraph(nn.Module):
    """PARSeq decoding a seven-character plate non-autoregressively, then `refine_iters` refinement rounds."""

    def __init__(self, ocr: PARSeq, image_size: Sequence[int]):
        super().__init__()
        self.ocr = copy.deepcopy(ocr)
        self.ocr.decode_ar = False
        self.input = PlateInput(image_size, ocr.img_size)

    def forward(self, images: Tensor) -> Tensor:
        return self.ocr._greedy_decode(self.ocr.encode(self.input(images)), PLATE_LENGTH)


def ocr_graph(ocr: nn.Module, image_size: Sequence[int]) -> nn.Module:
    if isinstance(ocr, PARSeq):
        return PARSeqGraph(ocr, image_size).eval()
    if isinstance(ocr, PlateSlotOCR):
        return SlotOCRGraph(ocr, image_size).eval()
    raise TypeError(f"no ONNX graph for OCR {type(ocr).__name__}")


def ocr_decoding(ocr: nn.Module) -> str:
    return (
        f"non-autoregressive, {ocr.refine_iters} refinement round(s)"
        if isinstance(ocr, PARSeq)
        else "one classifier per slot"
    )


def _export(module: nn.Module, example: Tensor, path: Path, input_name: str, output_name: str, opset: int) -> None:
    module.eval()  # a wrapper starts in training mode, and the exporter restores that mode recursively
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings for the fixed sizes, exporter deprecation notices
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=False,
            input_names=[input_name],
            output_names=[output_name],
            opset_version=opset,
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
        )


@dataclass
class ExportReport:
    folder: Path
    max_logit_difference: float  # ONNX Runtime against PyTorch on a few random plates
    ocr_decoding: str


def export_onnx(
    bundle: str | Path, out: str | Path, overwrite: bool = False, opset: int = DEFAULT_OPSET
) -> ExportReport:
    """Write `generator.onnx`, `ocr.onnx` and `meta.json` for a bundle into `out`, atomically; then run both
    graphs on four random LR plates and report the largest logit difference from PyTorch."""
    from lpasrn.inference.bundle import load_bundle

    require_onnx()
    generator, ocr, cfg = load_bundle(bundle, "cpu")
    lr_size = tuple(cfg.data.lr_size)
    hr_size = (lr_size[0] * cfg.data.scale, lr_size[1] * cfg.data.scale)
    torch.manual_seed(0)
    frames = cfg.model.generator_frames
    lr_shape = (3, *lr_size) if frames == 1 else (frames, 3, *lr_size)  # multi-frame: [N, K, 3, h, w]
    example_lr = torch.rand(2, *lr_shape)
    meta = {
        "format": ONNX_FORMAT,
        "source": str(bundle),
        "lr_size": list(lr_size),
        "scale": cfg.data.scale,
        "hr_size": list(hr_size),
        "generator_layout": cfg.model.pyramid_layout,
        "ocr_model_type": cfg.ocr.model_type,
        "ocr_decoding": ocr_decoding(ocr),
        "refine_iters": getattr(ocr, "refine_iters", 0),
        "charset": CHARSET,
        "plate_length": PLATE_LENGTH,
        "generator_frames": frames,
        "opset": opset,
        "inputs": {"generator": "lr", "ocr": "image"},
        "outputs": {"generator": "sr", "ocr": "logits"},
    }
    with atomic_directory(out, overwrite=overwrite) as staging:
        _export(GeneratorGraph(generator), example_lr, staging / GENERATOR_FILE, "lr", "sr", opset)
        _export(ocr_graph(ocr, hr_size), torch.rand(2, 3, *hr_size), staging / OCR_FILE, "image", "logits", opset)
        (staging / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        difference = parity(generator, ocr, OnnxPlateReader(staging), torch.rand(4, *lr_shape))
    return ExportReport(Path(out), difference, meta["ocr_decoding"])


@torch.inference_mode()
def parity(generator: nn.Module, ocr: nn.Module, reader: OnnxPlateReader, lr: Tensor) -> float:
    """Largest |logit difference| between the ONNX graphs and PyTorch (decoding as exported) on `lr`."""
    expected = TorchPlateReader(generator, ocr, (lr.shape[-2], lr.shape[-1]), decode="nar").token_logits(lr)
    return float((reader.token_logits(lr) - expected).abs().max())
