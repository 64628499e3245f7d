"""Keras model -> ESP-DL `.espdl` (Espressif's int8 format for esp32s3 / esp32p4) through ONNX and ESP-PPQ.

tf2onnx turns the Keras graph into ONNX with an NCHW input (ESP-DL's layout), ESP-PPQ calibrates it on
training images, quantizes it to 8 bits for the target chip and writes the flatbuffer. ESP-PPQ also gives the
quantized graph back, and its PyTorch executor simulates the int8 arithmetic on the CPU: that is how the
`.espdl` accuracy is measured here. Needs the `espdl` extra (`pip install -e '.[espdl]'`); nothing here
imports Ray.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from experiments.errors import UserError
from experiments.io import ensure_folder

log = logging.getLogger(__name__)

ESPDL_TARGETS = ("esp32s3", "esp32p4")
ESPDL_BITS = 8
ONNX_OPSET = 13
INPUT_NAME = "input"
INSTALL_HINT = "pip install -e '.[espdl]'"
REQUIRED_MODULES = ("tf2onnx", "esp_ppq")
# ESP-PPQ's ESP-DL setting calibrates activation ranges with KL divergence; percentile ranges kept the float
# accuracy on every architecture here (KL cost up to 3 points on the MobileNetV2-style v16, see the README).
ACTIVATION_CALIBRATION = "percentile"
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
TORCH_THREADS = 1  # batch-1 passes of a small CNN: more threads only wait on each other


@dataclass(frozen=True)
class EspdlExport:
    """The written `.espdl` file and the accuracy of its quantized graph (None when not measured)."""

    path: Path
    size_bytes: int
    accuracy: float | None
    images: int


def espdl_file_name(model_name: str, target: str) -> str:
    return f"{model_name}_{target}.espdl"


def _missing_message(what: str) -> str:
    return (
        f"esp_dl_quantize needs tf2onnx and esp-ppq ({what} not installed): {INSTALL_HINT} or set esp_dl_quantize=false"
    )


def espdl_available() -> None:
    """Raise a one-line UserError when tf2onnx or esp-ppq is not installed (cheap: nothing is imported)."""
    for module in REQUIRED_MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # ValueError: a module blocked in sys.modules has no spec
            found = False
        if not found:
            raise UserError(_missing_message(module))


def _require_packages():
    """Import tf2onnx and ESP-PPQ's api lazily; a missing package is a one-line UserError."""
    try:
        with _quiet():
            import tf2onnx
            from esp_ppq.api import QuantizationSettingFactory, espdl_quantize_onnx
    except ImportError as err:
        raise UserError(_missing_message(err.name or str(err))) from None
    return tf2onnx, espdl_quantize_onnx, QuantizationSettingFactory


class _ChatterLog(io.TextIOBase):
    """A text stream that hands each complete line to this module's logger: DEBUG, or WARNING for the lines
    ESP-PPQ's own logger marks [WARNING] or [ERROR]."""

    encoding = "utf-8"

    def __init__(self) -> None:
        super().__init__()
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            line = ANSI_COLOUR.sub("", line.rsplit("\r", 1)[-1]).strip()  # a progress bar redraws after \r
            if line:
                log.log(logging.WARNING if "[WARNING]" in line or "[ERROR]" in line else logging.DEBUG, "%s", line)
        return len(text)


_CHATTER = _ChatterLog()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Send the converters' chatter (tf2onnx, ESP-PPQ tables and progress bars) to the log, not to stdout.

    ESP-PPQ's loggers keep the `sys.stdout` of the moment they are created, so esp_ppq is first imported inside
    this block: its later messages go to the log as well.
    """
    loggers = [logging.getLogger(name) for name in ("tf2onnx", "tensorflow")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.level, logging.WARNING))
    try:
        with contextlib.redirect_stdout(_CHATTER), contextlib.redirect_stderr(_CHATTER), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Run PyTorch (ESP-PPQ's executor) on `threads` threads, restoring the process setting afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def nchw(images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) float images -> (N, C, H, W), contiguous float32."""
    return np.ascontiguousarray(np.asarray(images, dtype=np.float32).transpose(0, 3, 1, 2))


def keras_to_onnx(model, path: Path) -> Path:
    """Write `model` as ONNX with a batch-1 NCHW float input named `input` (opset 13)."""
    tf2onnx = _require_packages()[0]
    import tensorflow as tf

    height, width, channels = model.input_shape[1:]
    spec = (tf.TensorSpec((1, height, width, channels), tf.float32, name=INPUT_NAME),)
    with _quiet():
        proto, _ = tf2onnx.convert.from_keras(
            model, input_signature=spec, opset=ONNX_OPSET, inputs_as_nchw=[INPUT_NAME]
        )
    path.write_bytes(proto.SerializeToString())
    return path


def quantized_accuracy(graph, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of ESP-PPQ's quantized `graph` on NHWC float `images`, its int8 arithmetic simulated on CPU.

    The graph has a batch-1 input (as ESP-DL needs), so images go through one at a time.
    """
    import torch
    from esp_ppq.executor import TorchExecutor

    if len(labels) == 0:
        return 0.0
    correct = 0
    with _quiet(), _torch_threads(TORCH_THREADS):
        executor = TorchExecutor(graph=graph, device="cpu")
        for image, label in zip(nchw(images), labels):
            output = executor.forward(inputs=torch.from_numpy(image[np.newaxis]))[0]
            correct += int(int(output.reshape(-1).argmax()) == int(label))
    return correct / len(labels)


def export_espdl(
    model,
    representative: np.ndarray,
    model_dir: str | os.PathLike,
    model_name: str,
    target: str = "esp32s3",
    val_images: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
) -> EspdlExport:
    """Quantize `model` to 8 bits for `target` and write `<model_dir>/<model_name>_<target>.espdl`.

    `representative` are float [0, 1] NHWC training images for calibration, the models' own input (they are
    transposed to NCHW here). With `val_images`/`val_labels` the quantized graph is also scored. The ONNX file
    and ESP-PPQ's output are made in a temporary folder beside the target and the `.espdl` is renamed into
    place, so an interrupted export leaves neither a partial `.espdl` nor leftovers.
    """
    if target not in ESPDL_TARGETS:
        raise UserError(f"esp_dl_target: {target!r} is not one of {', '.join(ESPDL_TARGETS)}")
    if len(representative) == 0:
        raise ValueError("ESP-DL calibration needs at least one representative image")
    _, espdl_quantize_onnx, settings = _require_packages()
    import torch
    from torch.utils.data import DataLoader, Dataset

    model_dir = Path(model_dir)
    ensure_folder(model_dir)
    target_path = model_dir / espdl_file_name(model_name, target)
    calibration = torch.from_numpy(nchw(representative))
    # A tensor is a map-style dataset (len and indexing), which torch's stubs do not know of
    calibration_set = cast(Dataset[torch.Tensor], calibration)
    setting = settings.espdl_setting(num_of_bits=ESPDL_BITS)
    setting.quantize_activation_setting.calib_algorithm = ACTIVATION_CALIBRATION
    staging = Path(tempfile.mkdtemp(prefix=f".{target_path.name}.", suffix=".partial", dir=model_dir))
    try:
        onnx_path = keras_to_onnx(model, staging / f"{model_name}.onnx")
        staged = staging / target_path.name
        with _quiet(), _torch_threads(TORCH_THREADS):
            graph = espdl_quantize_onnx(
                onnx_import_file=str(onnx_path),
                espdl_export_file=str(staged),
                calib_dataloader=DataLoader(calibration_set, batch_size=1, shuffle=False),
                calib_steps=len(calibration),
                input_shape=[1, *calibration.shape[1:]],
                target=target,
                num_of_bits=ESPDL_BITS,
                setting=setting,
                device="cpu",
                error_report=False,
                export_config=False,
                verbose=0,
            )
        os.replace(staged, target_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    accuracy, images = None, 0
    if val_images is not None and val_labels is not None:
        accuracy, images = quantized_accuracy(graph, val_images, val_labels), int(len(val_labels))
    size = target_path.stat().st_size
    log.info(
        "%s: %d bytes%s",
        target_path.name,
        size,
        "" if accuracy is None else f", quantized accuracy {accuracy:.4f} on {images} images",
    )
    return EspdlExport(target_path, size, accuracy, images)
