"""What each registered architecture costs on a device: parameters and full-INT8 TFLite size."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digits.architectures import build_model, list_models, model_entry
from digits.export.tflite import int8_tflite_bytes


@dataclass(frozen=True)
class ModelInfo:
    name: str
    params: int
    int8_bytes: int
    embedded: bool
    description: str


def _like_trained(model, rng: np.random.Generator) -> None:
    """Give every constant-initialised variable (biases, BatchNorm gamma/beta/mean/variance) small distinct
    values, as training does. Untouched, the TFLite converter folds them into identical (often zero) constants
    and stores each only once, so an untrained model converts to a smaller file than the same model trained
    (v17: 96.7 KB against 111.3 KB); kernels keep their initialiser's values, so activation ranges stay realistic."""
    weights = []
    for variable, value in zip(model.weights, model.get_weights()):
        if value.size > 1 and np.all(value == value.flat[0]):
            noise = rng.normal(0.0, 0.05, value.shape)
            value = (np.abs(value + noise) if "variance" in variable.path else value + noise).astype(value.dtype)
        weights.append(value)
    model.set_weights(weights)


def describe_model(
    name: str,
    nb_classes: int = 10,
    input_channels: int = 1,
    height: int = 32,
    width: int = 20,
    calibration_images: int = 8,
    seed: int = 0,
) -> ModelInfo:
    """Build `name`, give it trained-like weights and convert it in memory: `int8_bytes` is the size of the
    full-INT8 `.tflite` file `digits train` writes (`<model>_quantized.tflite`, `int8_tflite_size_bytes` in
    metrics.json) to within about 1 %, before any training."""
    entry = model_entry(name)
    model = build_model(name, (height, width, input_channels), nb_classes)
    rng = np.random.default_rng(seed)
    _like_trained(model, rng)
    images = rng.random((calibration_images, height, width, input_channels), np.float32)
    size = len(int8_tflite_bytes(model, images))
    return ModelInfo(entry.name, int(model.count_params()), size, entry.embedded, entry.description)


def describe_models(nb_classes: int = 10, input_channels: int = 1) -> list[ModelInfo]:
    return [describe_model(name, nb_classes, input_channels) for name in list_models()]
