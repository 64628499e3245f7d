"""The INT8 score of a trained model: convert it to full-integer TFLite and score that with LiteRT.

A tuner that ranks trials by float accuracy can pick a configuration that loses most of its accuracy on the
device, so `digits tune` ranks its finished trials by the deployed INT8 model. Converting (and, with QAT,
fine-tuning a fake-quantized copy first) is the expensive part, so it runs where a decision needs it: once at
the end of a trial, not after every epoch. Nothing here imports Ray.
"""
from __future__ import annotations

import logging

import keras
import numpy as np

from digits.config import DigitsConfig
from digits.export import int8_tflite_bytes
from digits.pipeline import DigitsData
from digits.tflite_eval import predict

log = logging.getLogger(__name__)

CALIBRATION_IMAGES = 100


def int8_model_bytes(model: keras.Model, cfg: DigitsConfig, data: DigitsData,
                     calibration_images: int = CALIBRATION_IMAGES, verbose: int = 0) -> bytes:
    """Full-INT8 TFLite of `model`: post-training calibration, or a QAT fine-tuned copy when `use_qat`
    (`digits.qat.qat_epochs(cfg)` more epochs of training).

    I/O is uint8 (TFLite Micro), or int8 for ESP-DL (`esp_dl_quantize`).
    """
    representative = data.representative_images(calibration_images, cfg.seed)
    io_type = "int8" if cfg.esp_dl_quantize else "uint8"
    if not cfg.use_qat:
        return int8_tflite_bytes(model, representative, io_type)
    from digits.qat import quantization_aware_finetune

    qat_model = quantization_aware_finetune(model, cfg, data, verbose=verbose)
    return int8_tflite_bytes(qat_model, representative, io_type)


def int8_accuracy(content: bytes, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of a converted model on float [0, 1] `images`."""
    if not len(labels):
        return 0.0
    probabilities, _ = predict(content, images)
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def int8_metrics(model: keras.Model, cfg: DigitsConfig, data: DigitsData, images: np.ndarray,
                 labels: np.ndarray) -> dict[str, float | int]:
    """`int8_accuracy` on (images, labels) and `int8_size_bytes` of the converted model."""
    content = int8_model_bytes(model, cfg, data)
    return {"int8_accuracy": int8_accuracy(content, images, labels), "int8_size_bytes": len(content)}
