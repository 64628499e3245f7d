"""Per-epoch INT8 probe: convert the model being trained to full-integer TFLite and score it with LiteRT.

A tuner that ranks trials by float accuracy can pick a configuration that loses most of its accuracy on the
device; scoring the deployed INT8 model every epoch makes the search (and its early stopping) see what ships.
Nothing here imports Ray: the probe hands its metrics to any reporter.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import keras
import numpy as np

from digits.config import DigitsConfig
from digits.export import int8_tflite_bytes
from digits.pipeline import DigitsData, to_float
from digits.tflite_eval import predict

log = logging.getLogger(__name__)

CALIBRATION_IMAGES = 100


def int8_model_bytes(model: keras.Model, cfg: DigitsConfig, data: DigitsData,
                     calibration_images: int = CALIBRATION_IMAGES, verbose: int = 0) -> bytes:
    """Full-INT8 TFLite of `model`: post-training calibration, or a QAT fine-tuned copy when `use_qat`.

    I/O is uint8 (TFLite Micro), or int8 for ESP-DL (`esp_dl_quantize`).
    """
    representative = data.representative_images(calibration_images, cfg.seed)
    io_type = "int8" if cfg.esp_dl_quantize else "uint8"
    if not cfg.use_qat:
        return int8_tflite_bytes(model, representative, io_type)
    from digits.qat import quantization_aware_finetune

    qat_model = quantization_aware_finetune(model, cfg, data, verbose=verbose)
    return int8_tflite_bytes(qat_model, representative, io_type)


def int8_metrics(model: keras.Model, cfg: DigitsConfig, data: DigitsData, images: np.ndarray,
                 labels: np.ndarray) -> dict[str, float]:
    """`int8_accuracy` on (images, labels) and `int8_size_bytes` of the converted model."""
    content = int8_model_bytes(model, cfg, data)
    probabilities, _ = predict(content, images)
    accuracy = float(np.mean(np.argmax(probabilities, axis=1) == labels)) if len(labels) else 0.0
    return {"int8_accuracy": accuracy, "int8_size_bytes": float(len(content))}


class Int8Probe(keras.callbacks.Callback):
    """After each epoch: Keras logs + INT8 accuracy and size, handed to `reporter` (e.g. ray.tune.report)."""

    def __init__(self, cfg: DigitsConfig, data: DigitsData, reporter: Callable[[dict], None],
                 max_images: int = 0):
        super().__init__()
        self.cfg, self.data, self.reporter = cfg, data, reporter
        images, labels = data.validation_set.images, data.validation_set.labels
        if max_images:
            pick = np.random.default_rng(cfg.seed).permutation(len(labels))[:max_images]
            images, labels = images[pick], labels[pick]
        self.images, self.labels = to_float(images), labels

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        metrics = {key: float(value) for key, value in (logs or {}).items()}
        metrics["epoch"] = epoch + 1
        metrics.update(int8_metrics(self.model, self.cfg, self.data, self.images, self.labels))
        log.debug("epoch %d: int8 accuracy %.4f, %d bytes", epoch + 1, metrics["int8_accuracy"],
                  metrics["int8_size_bytes"])
        self.reporter(metrics)
