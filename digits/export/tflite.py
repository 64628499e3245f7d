"""Keras model -> TFLite files: float32, and full-integer INT8 calibrated on training images.

Full-integer means every op (inputs and outputs too) is integer, as ESP32 TFLite Micro needs: uint8 I/O by
default, int8 I/O for ESP-DL (`esp_dl_quantize`). Files are written atomically.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf

from experiments.io import atomic_write_bytes

log = logging.getLogger(__name__)


def _converter(model) -> tf.lite.TFLiteConverter:
    return tf.lite.TFLiteConverter.from_keras_model(model)


def _convert(converter: tf.lite.TFLiteConverter) -> bytes:
    # The Keras 3 path exports a SavedModel first and prints its signature to stdout; keep stdout for results.
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(max(level, logging.WARNING))
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            return converter.convert()
    finally:
        tf_logger.setLevel(level)


def float_tflite_bytes(model) -> bytes:
    return _convert(_converter(model))


def int8_tflite_bytes(model, representative: np.ndarray, io_type: str = "uint8") -> bytes:
    """Full-integer INT8 model; `representative` are float [0, 1] images (N, H, W, C) for calibration."""
    if len(representative) == 0:
        raise ValueError("INT8 calibration needs at least one representative image")
    samples = np.asarray(representative, dtype=np.float32)

    def dataset() -> Iterator[list[np.ndarray]]:
        for image in samples:
            yield [image[np.newaxis]]

    converter = _converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8 if io_type == "int8" else tf.uint8
    converter.inference_output_type = converter.inference_input_type
    return _convert(converter)


def export_float_tflite(model, path: Path) -> Path:
    return atomic_write_bytes(path, float_tflite_bytes(model))


def export_int8_tflite(model, representative: np.ndarray, path: Path, io_type: str = "uint8") -> Path:
    return atomic_write_bytes(path, int8_tflite_bytes(model, representative, io_type))
