"""Running an export of `lpasrn export --format onnx` with ONNX Runtime: LR frames in, OCR logits out.

Its own module so that reading an export (`lpasrn predict --onnx`) needs neither the exporter nor `onnx`, and
`lpasrn.inference.prediction` and `lpasrn.inference.deploy` each depend on it, not on each other both ways.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from experiments.errors import UserError
from lpasrn.data.charset import CHARSET, PLATE_LENGTH

ONNX_FORMAT = "glyphray-lpasrn-onnx/1"
GENERATOR_FILE, OCR_FILE, META_FILE = "generator.onnx", "ocr.onnx", "meta.json"
INSTALL_HINT = "install the ONNX extra: pip install -e '.[espdl]' (make setup installs it)"


def require_onnx(runtime_only: bool = False) -> None:
    """A one-line UserError when onnx (needed to export) or onnxruntime (needed to run) is missing."""
    import importlib.util

    for name in ("onnxruntime",) if runtime_only else ("onnx", "onnxruntime"):
        if importlib.util.find_spec(name) is None:
            raise UserError(f"the {name} package is not installed: {INSTALL_HINT}")


def read_meta(folder: Path) -> dict[str, Any]:
    """The export's meta.json, checked: a one-line UserError for a missing file or another format."""
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
