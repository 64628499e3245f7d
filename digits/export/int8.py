"""The INT8 score of a trained model: convert it to full-integer TFLite and score that with LiteRT.

A tuner that ranks trials by float accuracy can pick a configuration that loses most of its accuracy on the
device, so `digits tune` ranks its finished trials by the deployed INT8 model. Converting (and, with QAT,
fine-tuning a fake-quantized copy first) is the expensive part, so it runs where a decision needs it: once at
the end of a trial, not after every epoch. Nothing here imports Ray.

Calibration: every 8-bit model here (TFLite INT8 with or without QAT, ESP-DL) is calibrated on the same
`CALIBRATION_IMAGES` training images (`calibration_images`), so a tuning trial scores the INT8 model that
`digits train` would export for its configuration.
"""

from __future__ import annotations

import logging

import keras
import numpy as np

from digits.config import DigitsConfig
from digits.data.datasets import DigitsData
from digits.export.tflite import int8_tflite_bytes
from digits.export.tflite_eval import predict

log = logging.getLogger(__name__)

# Training images (drawn across sources, seeded by the config's seed) that 8-bit quantization calibrates on.
# 200 is what the exports of the README's accuracy tables used; tuning trials calibrated on 100 until both
# were made one setting.
CALIBRATION_IMAGES = 200


def calibration_images(data: DigitsData, seed: int) -> np.ndarray:
    """The `CALIBRATION_IMAGES` float [0, 1] training images every 8-bit export of a run calibrates on."""
    return data.representative_images(CALIBRATION_IMAGES, seed)


def int8_model_bytes(model: keras.Model, cfg: DigitsConfig, data: DigitsData, verbose: int = 0) -> bytes:
    """Full-INT8 TFLite of `model`: post-training calibration, or a QAT fine-tuned copy when `use_qat`
    (`digits.export.qat.qat_epochs(cfg)` more epochs of training).

    I/O is uint8 (TFLite Micro), or int8 for ESP-DL (`esp_dl_quantize`).
    """
    representative = calibration_images(data, cfg.seed)
    io_type = "int8" if cfg.esp_dl_quantize else "uint8"
    if not cfg.use_qat:
        return int8_tflite_bytes(model, representative, io_type)
    from digits.export.qat import quantization_aware_finetune

    qat_model = quantization_aware_finetune(model, cfg, data, verbose=verbose)
    return int8_tflite_bytes(qat_model, representative, io_type)


def int8_accuracy(content: bytes, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of a converted model on float [0, 1] `images`."""
    if not len(labels):
        return 0.0
    probabilities, _ = predict(content, images)
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))
