"""Running .tflite models with the LiteRT interpreter: predictions, accuracy, latency, size.

Quantized inputs are fed as the model expects (float image / scale + zero point, in the integer type) and
quantized outputs are turned back into probabilities, so float and INT8 models are compared on equal terms.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter


@dataclass
class TFLiteEvaluation:
    accuracy: float
    latency_ms: float
    size_bytes: int
    input_dtype: str
    images: int

    def as_dict(self) -> dict:
        return asdict(self)


def load_interpreter(model: Path | bytes, threads: int = 1) -> Interpreter:
    kwargs = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    interpreter = Interpreter(num_threads=threads, **kwargs)
    interpreter.allocate_tensors()
    return interpreter


def _quantize(images: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype == np.float32:
        return images.astype(np.float32)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(images / scale + zero_point), info.min, info.max).astype(dtype)


def _dequantize(values: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return values.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return (values.astype(np.float32) - zero_point) * scale


def predict(model: Path | bytes | Interpreter, images: np.ndarray, threads: int = 1) -> tuple[np.ndarray, float]:
    """Probabilities (N, classes) for float [0, 1] images, one image per invoke, and the mean ms per invoke."""
    interpreter = model if isinstance(model, Interpreter) else load_interpreter(model, threads)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    quantized = _quantize(np.asarray(images, dtype=np.float32), inp)
    outputs = []
    elapsed = 0.0
    for image in quantized:
        interpreter.set_tensor(inp["index"], image[np.newaxis])
        start = time.perf_counter()
        interpreter.invoke()
        elapsed += time.perf_counter() - start
        outputs.append(_dequantize(interpreter.get_tensor(out["index"])[0], out))
    return np.stack(outputs), 1000.0 * elapsed / max(1, len(quantized))


def evaluate_tflite(path: Path, images: np.ndarray, labels: np.ndarray, threads: int = 1) -> TFLiteEvaluation:
    """Accuracy on (images, labels), mean single-image latency and file size of one .tflite file."""
    interpreter = load_interpreter(Path(path), threads)
    probabilities, latency = predict(interpreter, images)
    accuracy = float(np.mean(np.argmax(probabilities, axis=1) == labels)) if len(labels) else 0.0
    dtype = np.dtype(interpreter.get_input_details()[0]["dtype"]).name
    return TFLiteEvaluation(accuracy, latency, Path(path).stat().st_size, dtype, int(len(labels)))
