"""One architecture from config to deployable files: train, export float + INT8 TFLite, evaluate, report.

Writes into `<export_dir>/<nb_classes>cls_<GRAY|RGB>/<model>/`: config.resolved.yaml, best_model.keras,
`<model>_float.tflite`, `<model>_quantized.tflite`, with `esp_dl_quantize` also `<model>_<esp_dl_target>.espdl`
(ESP-DL), training_history.png and metrics.json. Epoch checkpoints are removed at the end unless `no_cleanup`.
An export_dir in a bucket (s3://, gs://) is written in a scratch folder and uploaded at the end through
`experiments.storage` (each file one completed upload, metrics.json last), as lpasrn's runs are.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from digits.architectures import model_entry
from digits.config import DigitsConfig
from digits.espdl import EspdlExport, export_espdl
from digits.export import export_float_tflite
from digits.int8_probe import int8_model_bytes
from digits.pipeline import DigitsData, to_float
from digits.preflight import check_run
from digits.report import plot_history, write_metrics
from digits.tflite_eval import TFLiteEvaluation, evaluate_tflite
from digits.train import Reporter, model_location, train_model
from experiments import storage
from experiments.config import save_resolved_config
from experiments.io import atomic_write_bytes

log = logging.getLogger(__name__)

METRICS_NAME = "metrics.json"
HISTORY_PLOT_NAME = "training_history.png"
CALIBRATION_IMAGES = 200


def keras_accuracy(model, images: np.ndarray, labels: np.ndarray, batch_size: int) -> float:
    probabilities = model.predict(images, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def export_int8(model, cfg: DigitsConfig, data: DigitsData, target: Path, verbose: int) -> Path:
    """Post-training INT8 calibrated on training images, or (use_qat) QAT fine-tuning and then conversion."""
    return atomic_write_bytes(target, int8_model_bytes(model, cfg, data, CALIBRATION_IMAGES, verbose))


def export_esp_dl(model, cfg: DigitsConfig, data: DigitsData, model_dir: Path, name: str, val_images: np.ndarray,
                  val_labels: np.ndarray) -> EspdlExport:
    """`<name>_<esp_dl_target>.espdl`: ESP-PPQ's 8-bit post-training quantization of the float model (also with
    use_qat, whose fake-quantized copy does not convert to ONNX), scored on the validation images."""
    return export_espdl(model, data.representative_images(CALIBRATION_IMAGES, cfg.seed), model_dir, name,
                        cfg.esp_dl_target, val_images, val_labels)


def _evaluation_metrics(prefix: str, evaluation: TFLiteEvaluation | None) -> dict:
    return {f"{prefix}_accuracy": evaluation.accuracy if evaluation else None,
            f"{prefix}_size_bytes": evaluation.size_bytes if evaluation else None,
            f"{prefix}_latency_ms": evaluation.latency_ms if evaluation else None}


def train_and_export(cfg: DigitsConfig, reporter: Reporter | None = None, no_cleanup: bool = False,
                     verbose: int = 2, *, model=None, data: DigitsData | None = None, export_name: str | None = None,
                     extra_metrics: dict | None = None) -> dict:
    """Train `cfg.model_architecture`, export and evaluate it; returns (and writes) its metrics.

    Fine-tuning passes a loaded `model`, its own mixed `data` and an `export_name` (`<model>_finetuned`), which
    names both the folder in the export group and the TFLite files; `extra_metrics` go into metrics.json.
    """
    check_run(cfg)
    outputs = storage.MirroredFolder(model_location(cfg, export_name))  # a bucket: a scratch folder, uploaded
    try:
        metrics = _train_and_export(cfg, outputs.local, reporter, no_cleanup, verbose, model=model, data=data,
                                    export_name=export_name, extra_metrics=extra_metrics)
        outputs.sync(last=[METRICS_NAME])  # metrics.json vouches for the files it lists
    finally:
        outputs.close()
    return metrics


def _train_and_export(cfg: DigitsConfig, model_dir: Path, reporter: Reporter | None, no_cleanup: bool, verbose: int,
                      *, model, data: DigitsData | None, export_name: str | None, extra_metrics: dict | None) -> dict:
    entry = model_entry(cfg.model_architecture)
    name = export_name or entry.name
    result = train_model(cfg, reporter=reporter, data=data, model_dir=model_dir, verbose=verbose, model=model,
                         before_fit=lambda: save_resolved_config(cfg, model_dir))
    model = result.model
    val_images = to_float(result.data.validation_set.images)
    val_labels = result.data.validation_set.labels
    files = {"best_model": result.best_model_path.name}

    float_path = export_float_tflite(model, model_dir / f"{name}_float.tflite")
    float_eval = evaluate_tflite(float_path, val_images, val_labels)
    files["float_tflite"] = float_path.name

    int8_eval = espdl = None
    if cfg.quantize_model and not entry.embedded:
        log.warning("%s is a PC-only model: INT8 export skipped (quantize_model ignored)", name)
    elif cfg.quantize_model:
        int8_path = export_int8(model, cfg, result.data, model_dir / f"{name}_quantized.tflite", verbose)
        int8_eval = evaluate_tflite(int8_path, val_images, val_labels)
        files["int8_tflite"] = int8_path.name
        if cfg.esp_dl_quantize:
            espdl = export_esp_dl(model, cfg, result.data, model_dir, name, val_images, val_labels)
            files["espdl"] = espdl.path.name
    files["history_plot"] = plot_history(result.history, model_dir / HISTORY_PLOT_NAME,
                                         f"{name} ({cfg.export_group})").name

    metrics = {"model": name, "nb_classes": cfg.nb_classes, "color_mode": cfg.color_mode, "params": result.params,
               "epochs_run": len(result.history.get("loss", [])), "best_epoch": result.best_epoch,
               "validation_images": int(len(val_labels)),
               "keras_float_accuracy": keras_accuracy(model, val_images, val_labels, cfg.batch_size),
               **_evaluation_metrics("float_tflite", float_eval), **_evaluation_metrics("int8_tflite", int8_eval),
               "int8_io_type": int8_eval.input_dtype if int8_eval else None,
               "quantization": ("qat" if cfg.use_qat else "ptq") if int8_eval else "none",
               "espdl_target": cfg.esp_dl_target if espdl else None,
               "espdl_accuracy": espdl.accuracy if espdl else None,
               "espdl_size_bytes": espdl.size_bytes if espdl else None,
               "history": result.history, "files": files, **(extra_metrics or {})}
    write_metrics(metrics, model_dir / METRICS_NAME)
    if not no_cleanup:
        shutil.rmtree(result.checkpoint_dir, ignore_errors=True)
    log.info("%s: keras %.4f, float tflite %.4f, int8 %s -> %s", name, metrics["keras_float_accuracy"],
             metrics["float_tflite_accuracy"], "-" if int8_eval is None else f"{int8_eval.accuracy:.4f}", model_dir)
    return metrics
