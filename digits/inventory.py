"""What each registered architecture costs on a device: parameters and full-INT8 TFLite size."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digits.architectures import build_model, list_models, model_entry
from digits.export import int8_tflite_bytes


@dataclass(frozen=True)
class ModelInfo:
    name: str
    params: int
    int8_bytes: int
    embedded: bool
    description: str


def describe_model(name: str, nb_classes: int = 10, input_channels: int = 1, height: int = 32, width: int = 20,
                   calibration_images: int = 8, seed: int = 0) -> ModelInfo:
    """Build `name` untrained and convert it in memory; the size does not depend on the weights' values."""
    entry = model_entry(name)
    model = build_model(name, (height, width, input_channels), nb_classes)
    images = np.random.default_rng(seed).random((calibration_images, height, width, input_channels), np.float32)
    size = len(int8_tflite_bytes(model, images))
    return ModelInfo(entry.name, int(model.count_params()), size, entry.embedded, entry.description)


def describe_models(nb_classes: int = 10, input_channels: int = 1) -> list[ModelInfo]:
    return [describe_model(name, nb_classes, input_channels) for name in list_models()]
