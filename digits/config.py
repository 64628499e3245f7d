"""Typed configuration of a digits run: the original `parameters.py` knobs, with its defaults and rules.

Keys are the original's names in lower case (`model_architecture`, `batch_size`, `quantize_model`,
`use_qat`, `esp_dl_quantize`, ...) so a user of `parameters.py` finds each one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from experiments import paths
from experiments.config import StrictModel, load_config

Optimizer = Literal["adam", "rmsprop", "sgd", "nadam", "adamw"]


class DataSource(StrictModel):
    """A folder with a `labels*.txt` (`filename<TAB>label`) or one sub-folder per class, and its weight."""

    path: Path
    weight: float = Field(1.0, gt=0)


class AugmentationConfig(StrictModel):
    """Augmentation ranges of the original (fractions; rotation in degrees)."""

    enabled: bool = True
    rotation_range: float = Field(5.0, ge=0, le=45)
    zoom_range: float = Field(0.1, ge=0, lt=1)
    brightness_range: float = Field(0.2, ge=0, lt=1)
    contrast_range: float = Field(0.2, ge=0, lt=1)


class ReduceLROnPlateauConfig(StrictModel):
    enabled: bool = True
    monitor: str = "val_loss"
    factor: float = Field(0.5, gt=0, lt=1)
    patience: int = Field(5, ge=1)
    min_lr: float = Field(1e-6, ge=0)


class EarlyStoppingConfig(StrictModel):
    enabled: bool = True
    monitor: str = "val_accuracy"
    patience: int = Field(15, ge=1)
    restore_best_weights: bool = True


class DigitsConfig(StrictModel):
    model_architecture: str = "digit_recognizer_v4"
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    optimizer: Optimizer = "nadam"
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    # Focal loss when focal_gamma > 0 (then label_smoothing is not used); 0 keeps plain cross-entropy.
    focal_gamma: float = Field(0.0, ge=0, le=10)
    focal_alpha: float = Field(0.25, gt=0, le=1)
    # Rate of the architecture's Dropout layers; None keeps each architecture's own rate.
    dropout: float | None = Field(None, ge=0, lt=1)
    nb_classes: Literal[10, 100, 11] = 10
    input_channels: Literal[1, 3] = 1
    input_height: int = Field(32, ge=8)
    input_width: int = Field(20, ge=8)
    data_sources: list[DataSource] = Field(default_factory=list)
    validation_split: float = Field(0.2, gt=0, lt=1)
    augmentation: AugmentationConfig = AugmentationConfig()
    reduce_lr_on_plateau: ReduceLROnPlateauConfig = ReduceLROnPlateauConfig()
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    quantize_model: bool = True
    use_qat: bool = False
    # ESP-DL: int8-I/O TFLite plus `<model>_<esp_dl_target>.espdl` (ESP-PPQ; `pip install -e '.[espdl]'`).
    esp_dl_quantize: bool = False
    esp_dl_target: Literal["esp32s3", "esp32p4"] = "esp32s3"
    export_dir: Path | str = Path("exported_models")  # a folder, or s3://bucket/prefix / gs://... (uploaded)
    seed: int = 42

    @field_validator("export_dir", mode="before")
    @classmethod
    def _uri_or_path(cls, value: object) -> object:
        return paths.path_or_uri(value)

    @model_validator(mode="after")
    def _quantization_rules(self) -> DigitsConfig:
        # The original's rules: QAT and ESP-DL both produce quantized models, so they need quantize_model.
        if self.use_qat and not self.quantize_model:
            raise ValueError("use_qat needs quantize_model: true (QAT trains for an INT8 export)")
        if self.esp_dl_quantize and not self.quantize_model:
            raise ValueError("esp_dl_quantize needs quantize_model: true (ESP-DL models are INT8)")
        return self

    @property
    def color_mode(self) -> str:
        return "GRAY" if self.input_channels == 1 else "RGB"

    @property
    def export_group(self) -> str:
        """`exported_models/<10|100>cls_<GRAY|RGB>/`: the original's folder per class count and colour."""
        return f"{self.nb_classes}cls_{self.color_mode}"

    def with_absolute_inputs(self) -> DigitsConfig:
        """Data sources resolved as `experiments.paths` does for both halves, so Ray tasks and Tune trials (which
        start in folders of their own) read what the command was pointed at."""
        sources = [source.model_copy(update={"path": paths.input_path(source.path)}) for source in self.data_sources]
        return self.model_copy(update={"data_sources": sources})

    def with_absolute_paths(self) -> DigitsConfig:
        """Inputs and `export_dir` resolved (a relative export_dir in a Ray job is refused: it would be lost)."""
        export_dir = paths.path_or_uri(paths.output_location(self.export_dir, "export_dir"))
        return self.with_absolute_inputs().model_copy(update={"export_dir": export_dir})


def load_digits_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> DigitsConfig:
    return load_config(DigitsConfig, path, overrides, kind="digits")
