"""One architecture from config to deployable files: train, export float + INT8 TFLite, evaluate, report.

Writes into `<export_dir>/<nb_classes>cls_<GRAY|RGB>/<model>/`: config.resolved.yaml, best_model.keras,
`<model>_float.tflite`, `<model>_quantized.tflite`, with `esp_dl_quantize` also `<model>_<esp_dl_target>.espdl`
(ESP-DL), training_history.png and metrics.json. Epoch checkpoints are removed at the end unless `no_cleanup`.
An export_dir in a bucket (s3://, gs://) is written in a scratch folder and uploaded at the end through
`experiments.storage` (each file one completed upload, metrics.json last), as lpasrn's runs are.
`train_and_export` returns a `RunResult`: the same figures as metrics.json, typed.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from digits.architectures import model_entry
from digits.config import DigitsConfig
from digits.data.datasets import DigitsData, to_float
from digits.export.espdl import EspdlExport, export_espdl
from digits.export.int8 import calibration_images, int8_model_bytes
from digits.export.tflite import export_float_tflite
from digits.export.tflite_eval import TFLiteEvaluation, evaluate_tflite
from digits.training.callbacks import Reporter
from digits.training.train import model_location, train_model
from digits.workflow.preflight import check_run
from digits.workflow.report import plot_history, write_metrics
from experiments import storage
from experiments.config import save_resolved_config
from experiments.io import atomic_write_bytes

log = logging.getLogger(__name__)

METRICS_NAME = "metrics.json"
HISTORY_PLOT_NAME = "training_history.png"


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


@dataclass(frozen=True)
class RunResult:
    """What `train_and_export` measured and wrote for one architecture (`metrics()` is its metrics.json)."""

    model: str  # the export name: the architecture, or `<architecture>_finetuned`
    location: str  # the model's folder: a path, or a URI when export_dir is in a bucket
    nb_classes: int
    color_mode: str
    params: int
    epochs_run: int
    best_epoch: int
    validation_images: int
    keras_float_accuracy: float
    float_tflite: TFLiteEvaluation
    int8_tflite: TFLiteEvaluation | None  # None: quantize_model off, or a PC-only model
    quantization: str  # "ptq", "qat" or "none"
    espdl: EspdlExport | None
    espdl_target: str | None
    history: dict[str, list[float]]
    files: dict[str, str]  # role -> file name in model_dir
    extra: dict[str, Any] = field(default_factory=dict)  # the caller's own keys (fine-tuning's settings)

    @property
    def int8_accuracy(self) -> float | None:
        return self.int8_tflite.accuracy if self.int8_tflite else None

    @property
    def int8_size_bytes(self) -> int | None:
        return self.int8_tflite.size_bytes if self.int8_tflite else None

    def metrics(self) -> dict[str, Any]:
        """metrics.json: flat keys, None for what was not made."""
        return {
            "model": self.model,
            "nb_classes": self.nb_classes,
            "color_mode": self.color_mode,
            "params": self.params,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "validation_images": self.validation_images,
            "keras_float_accuracy": self.keras_float_accuracy,
            **_evaluation_metrics("float_tflite", self.float_tflite),
            **_evaluation_metrics("int8_tflite", self.int8_tflite),
            "int8_io_type": self.int8_tflite.input_dtype if self.int8_tflite else None,
            "quantization": self.quantization,
            "espdl_target": self.espdl_target,
            "espdl_accuracy": self.espdl.accuracy if self.espdl else None,
            "espdl_size_bytes": self.espdl.size_bytes if self.espdl else None,
            "history": self.history,
            "files": self.files,
            **self.extra,
        }

    def summary(self) -> str:
        """The line a command prints for the model: its accuracies and where its files are."""
        espdl = f", espdl ({self.espdl_target}) {_fmt(self.espdl.accuracy)}" if self.espdl else ""
        return (
            f"{self.model}: keras {self.keras_float_accuracy:.4f}, float tflite {self.float_tflite.accuracy:.4f}, "
            f"int8 {_fmt(self.int8_accuracy)}{espdl} -> {self.location}"
        )


def keras_accuracy(model, images: np.ndarray, labels: np.ndarray, batch_size: int) -> float:
    probabilities = model.predict(images, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def export_int8(model, cfg: DigitsConfig, data: DigitsData, target: Path, verbose: int) -> Path:
    """Post-training INT8 calibrated on training images, or (use_qat) QAT fine-tuning and then conversion."""
    return atomic_write_bytes(target, int8_model_bytes(model, cfg, data, verbose))


def export_esp_dl(
    model,
    cfg: DigitsConfig,
    data: DigitsData,
    model_dir: Path,
    name: str,
    val_images: np.ndarray,
    val_labels: np.ndarray,
) -> EspdlExport:
    """`<name>_<esp_dl_target>.espdl`: ESP-PPQ's 8-bit post-training quantization of the float model (also with
    use_qat, whose fake-quantized copy does not convert to ONNX), scored on the validation images."""
    return export_espdl(
        model, calibration_images(data, cfg.seed), model_dir, name, cfg.esp_dl_target, val_images, val_labels
    )


def _evaluation_metrics(prefix: str, evaluation: TFLiteEvaluation | None) -> dict:
    return {
        f"{prefix}_accuracy": evaluation.accuracy if evaluation else None,
        f"{prefix}_size_bytes": evaluation.size_bytes if evaluation else None,
        f"{prefix}_latency_ms": evaluation.latency_ms if evaluation else None,
    }


def train_and_export(
    cfg: DigitsConfig,
    reporter: Reporter | None = None,
    no_cleanup: bool = False,
    verbose: int = 2,
    *,
    model=None,
    data: DigitsData | None = None,
    export_name: str | None = None,
    extra_metrics: dict | None = None,
) -> RunResult:
    """Train `cfg.model_architecture`, export and evaluate it; writes metrics.json and returns the result.

    Fine-tuning passes a loaded `model`, its own mixed `data` and an `export_name` (`<model>_finetuned`), which
    names both the folder in the export group and the TFLite files; `extra_metrics` go into metrics.json.
    """
    check_run(cfg)
    location = model_location(cfg, export_name)
    outputs = storage.MirroredFolder(location)  # a bucket: a scratch folder, uploaded
    try:
        result = _train_and_export(
            cfg,
            location,
            outputs.local,
            reporter,
            no_cleanup,
            verbose,
            model=model,
            data=data,
            export_name=export_name,
            extra_metrics=extra_metrics,
        )
        outputs.sync(last=[METRICS_NAME])  # metrics.json vouches for the files it lists
    finally:
        outputs.close()
    return result


def _train_and_export(
    cfg: DigitsConfig,
    location: str,
    model_dir: Path,
    reporter: Reporter | None,
    no_cleanup: bool,
    verbose: int,
    *,
    model,
    data: DigitsData | None,
    export_name: str | None,
    extra_metrics: dict | None,
) -> RunResult:
    entry = model_entry(cfg.model_architecture)
    name = export_name or entry.name
    trained = train_model(
        cfg,
        reporter=reporter,
        data=data,
        model_dir=model_dir,
        verbose=verbose,
        model=model,
        before_fit=lambda: save_resolved_config(cfg, model_dir),
    )
    model = trained.model
    val_images = to_float(trained.data.validation_set.images)
    val_labels = trained.data.validation_set.labels
    files = {"best_model": trained.best_model_path.name}

    float_path = export_float_tflite(model, model_dir / f"{name}_float.tflite")
    float_eval = evaluate_tflite(float_path, val_images, val_labels)
    files["float_tflite"] = float_path.name

    int8_eval = espdl = None
    if cfg.quantize_model and not entry.embedded:
        log.warning("%s is a PC-only model: INT8 export skipped (quantize_model ignored)", name)
    elif cfg.quantize_model:
        int8_path = export_int8(model, cfg, trained.data, model_dir / f"{name}_quantized.tflite", verbose)
        int8_eval = evaluate_tflite(int8_path, val_images, val_labels)
        files["int8_tflite"] = int8_path.name
        if cfg.esp_dl_quantize:
            espdl = export_esp_dl(model, cfg, trained.data, model_dir, name, val_images, val_labels)
            files["espdl"] = espdl.path.name
    files["history_plot"] = plot_history(
        trained.history, model_dir / HISTORY_PLOT_NAME, f"{name} ({cfg.export_group})"
    ).name

    result = RunResult(
        model=name,
        location=location,
        nb_classes=cfg.nb_classes,
        color_mode=cfg.color_mode,
        params=trained.params,
        epochs_run=len(trained.history.get("loss", [])),
        best_epoch=trained.best_epoch,
        validation_images=int(len(val_labels)),
        keras_float_accuracy=keras_accuracy(model, val_images, val_labels, cfg.batch_size),
        float_tflite=float_eval,
        int8_tflite=int8_eval,
        quantization=("qat" if cfg.use_qat else "ptq") if int8_eval else "none",
        espdl=espdl,
        espdl_target=cfg.esp_dl_target if espdl else None,
        history=trained.history,
        files=files,
        extra=dict(extra_metrics or {}),
    )
    write_metrics(result.metrics(), model_dir / METRICS_NAME)
    if not no_cleanup:
        shutil.rmtree(trained.checkpoint_dir, ignore_errors=True)
    log.info("%s", result.summary())
    return result
