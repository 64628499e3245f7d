"""The deployable artefact: the generator and the OCR as ONNX graphs, and a plate reader that runs them.

`export_onnx` writes, into one folder (atomically):

    generator.onnx   lr [B, 3, h, w] in [0, 1] -> sr [B, 3, h*s, w*s] in [0, 1]
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
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from experiments.errors import UserError
from experiments.io import atomic_directory
from lpasrn.data.charset import CHARSET, PLATE_LENGTH
from lpasrn.models.parseq import PARSeq
from lpasrn.models.slot_ocr import PlateSlotOCR

logger = logging.getLogger(__name__)

ONNX_FORMAT = "glyphray-lpasrn-onnx/1"
GENERATOR_FILE, OCR_FILE, META_FILE = "generator.onnx", "ocr.onnx", "meta.json"
DEFAULT_OPSET = 17
INSTALL_HINT = "install the ONNX extra: pip install -e '.[espdl]' (make setup installs it)"


def require_onnx(runtime_only: bool = False) -> None:
    """A one-line UserError when onnx (needed to export) or onnxruntime (needed to run) is missing."""
    import importlib.util

    for name in (("onnxruntime",) if runtime_only else ("onnx", "onnxruntime")):
        if importlib.util.find_spec(name) is None:
            raise UserError(f"the {name} package is not installed: {INSTALL_HINT}")


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
    return (f"non-autoregressive, {ocr.refine_iters} refinement round(s)" if isinstance(ocr, PARSeq)
            else "one classifier per slot")


def _export(module: nn.Module, example: Tensor, path: Path, input_name: str, output_name: str, opset: int) -> None:
    module.eval()  # a wrapper starts in training mode, and the exporter restores that mode recursively
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings for the fixed sizes, exporter deprecation notices
        torch.onnx.export(module, (example,), str(path), dynamo=False, input_names=[input_name],
                          output_names=[output_name], opset_version=opset,
                          dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}})


@dataclass
class ExportReport:
    folder: Path
    max_logit_difference: float  # ONNX Runtime against PyTorch on a few random plates
    ocr_decoding: str


def export_onnx(bundle: str | Path, out: str | Path, overwrite: bool = False,
                opset: int = DEFAULT_OPSET) -> ExportReport:
    """Write `generator.onnx`, `ocr.onnx` and `meta.json` for a bundle into `out`, atomically; then run both
    graphs on four random LR plates and report the largest logit difference from PyTorch."""
    from lpasrn.training.bundle import load_bundle

    require_onnx()
    generator, ocr, cfg = load_bundle(bundle, "cpu")
    lr_size = tuple(cfg.data.lr_size)
    hr_size = (lr_size[0] * cfg.data.scale, lr_size[1] * cfg.data.scale)
    torch.manual_seed(0)
    frames = cfg.model.generator_frames
    lr_shape = (3, *lr_size) if frames == 1 else (frames, 3, *lr_size)  # multi-frame: [N, K, 3, h, w]
    example_lr = torch.rand(2, *lr_shape)
    meta = {"format": ONNX_FORMAT, "source": str(bundle), "lr_size": list(lr_size), "scale": cfg.data.scale,
            "hr_size": list(hr_size), "generator_layout": cfg.model.pyramid_layout,
            "ocr_model_type": cfg.ocr.model_type, "ocr_decoding": ocr_decoding(ocr),
            "refine_iters": getattr(ocr, "refine_iters", 0), "charset": CHARSET, "plate_length": PLATE_LENGTH,
            "generator_frames": frames, "opset": opset, "inputs": {"generator": "lr", "ocr": "image"},
            "outputs": {"generator": "sr", "ocr": "logits"}}
    with atomic_directory(out, overwrite=overwrite) as staging:
        _export(GeneratorGraph(generator), example_lr, staging / GENERATOR_FILE, "lr", "sr", opset)
        _export(ocr_graph(ocr, hr_size), torch.rand(2, 3, *hr_size), staging / OCR_FILE, "image", "logits", opset)
        (staging / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        difference = parity(generator, ocr, OnnxPlateReader(staging), torch.rand(4, *lr_shape))
    return ExportReport(Path(out), difference, meta["ocr_decoding"])


@torch.inference_mode()
def parity(generator: nn.Module, ocr: nn.Module, reader: OnnxPlateReader, lr: Tensor) -> float:
    """Largest |logit difference| between the ONNX graphs and PyTorch (decoding as exported) on `lr`."""
    from lpasrn.prediction import TorchPlateReader

    expected = TorchPlateReader(generator, ocr, tuple(lr.shape[-2:]), decode="nar").token_logits(lr)
    return float((reader.token_logits(lr) - expected).abs().max())


# ----------------------------------------------------------------------------------------------------------
# Running the graphs
# ----------------------------------------------------------------------------------------------------------
def read_meta(folder: Path) -> dict[str, Any]:
    path = folder / META_FILE
    for needed in (path, folder / GENERATOR_FILE, folder / OCR_FILE):
        if not needed.is_file():
            raise UserError(f"{needed}: not found (write the folder with lpasrn export --format onnx)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != ONNX_FORMAT:
        raise UserError(f"{path}: not a glyphray ONNX export (expected format {ONNX_FORMAT})")
    if meta.get("charset") != CHARSET or meta.get("plate_length") != PLATE_LENGTH:
        raise UserError(f"{path}: exported for another charset or plate length than this version reads")
    return meta


class OnnxPlateReader:
    """LR frames -> OCR token logits with ONNX Runtime, from a folder `export_onnx` wrote."""

    def __init__(self, folder: str | Path, device: str = "cpu", threads: int = 0):
        require_onnx(runtime_only=True)
        import onnxruntime as ort

        self.folder = Path(folder)
        self.meta = read_meta(self.folder)
        self.lr_size = tuple(self.meta["lr_size"])
        self.generator_frames = int(self.meta.get("generator_frames", 1))
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise UserError("--device cuda: this onnxruntime has no CUDA provider (install onnxruntime-gpu)")
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        sessions = {}
        for name, file in (("generator", GENERATOR_FILE), ("ocr", OCR_FILE)):
            try:
                sessions[name] = ort.InferenceSession(str(self.folder / file), options, providers=providers)
            except Exception as err:  # onnxruntime raises its own exception types for unreadable graphs
                first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise UserError(f"{self.folder / file}: cannot load the ONNX graph ({first_line})") from None
        self.generator, self.ocr = sessions["generator"], sessions["ocr"]

    def token_logits(self, lr: Tensor) -> Tensor:
        """[N, 3, h, w] LR frames (multi-frame: [N, K, 3, h, w]) in [0, 1] -> [N, 8, 37] float32 logits on the CPU."""
        sr = self.generator.run(None, {"lr": lr.detach().float().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(self.ocr.run(None, {"image": sr})[0])
