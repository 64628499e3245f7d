"""Typed `digits tune` settings (experiments/digits/tune.yaml): budget, objective, search space, base run."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Sequence

from pydantic import Field, model_validator

from digits.config import DigitsConfig, Optimizer
from experiments import paths
from experiments.config import StrictModel, load_config

Quantization = Literal["ptq", "qat"]


class FloatRange(StrictModel):
    """A float sampled in [low, high], log-uniform when `log`; `step` makes it discrete (so repeats occur)."""

    low: float
    high: float
    log: bool = False
    step: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> "FloatRange":
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("step and log cannot be combined (Optuna samples either)")
        return self


FloatSpec = FloatRange | list[float]


class SearchSpace(StrictModel):
    """Bounds of every tuned knob: a list is a categorical choice, a mapping a (log-)uniform range."""

    architectures: list[str] = Field(default_factory=lambda: ["digit_recognizer_v6", "digit_recognizer_v7",
                                                              "digit_recognizer_v4"], min_length=1)
    optimizers: list[Optimizer] = Field(default_factory=lambda: ["adam", "rmsprop", "sgd", "nadam", "adamw"],
                                        min_length=1)
    learning_rate: FloatSpec = FloatRange(low=1e-4, high=1e-2, log=True)
    batch_size: list[int] = Field(default_factory=lambda: [16, 32, 64], min_length=1)
    focal_gamma: list[float] = Field(default_factory=lambda: [0.0, 1.0, 2.0], min_length=1)
    focal_alpha: FloatSpec = FloatRange(low=0.1, high=0.5)
    label_smoothing: FloatSpec = FloatRange(low=0.0, high=0.2)
    dropout: FloatSpec = FloatRange(low=0.0, high=0.5)
    quantization: list[Quantization] = Field(default_factory=lambda: ["ptq", "qat"], min_length=1)
    # Per-architecture replacements of the ranges above (e.g. smaller batches for a large model): the space is
    # conditional on the architecture, and Optuna learns each architecture's knob separately.
    per_architecture: dict[str, dict[str, FloatSpec | list[int] | list[str]]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_overrides(self) -> "SearchSpace":
        tunable = {"optimizers", "learning_rate", "batch_size", "focal_gamma", "focal_alpha", "label_smoothing",
                   "dropout", "quantization"}
        for arch, overrides in self.per_architecture.items():
            if arch not in self.architectures:
                raise ValueError(f"per_architecture.{arch}: not one of the tuned architectures")
            unknown = sorted(set(overrides) - tunable)
            if unknown:
                raise ValueError(f"per_architecture.{arch}: cannot override {unknown}; tunable: {sorted(tunable)}")
        return self


class TuneConfig(StrictModel):
    """A `digits tune` experiment: where it goes, how much it may spend, what it optimises, over what."""

    name: str = Field("digits_tune", min_length=1)
    storage_path: Path = Path("runs/tune")
    objective: Literal["single", "multi"] = "single"  # single: INT8 accuracy; multi: + INT8 size (Pareto front)
    num_samples: int = Field(20, ge=1)
    max_concurrent: int = Field(2, ge=1)
    cpus_per_trial: float = Field(1.0, gt=0)
    gpus_per_trial: float = Field(0.0, ge=0)
    epochs_per_trial: int = Field(10, ge=1)
    grace_period: int = Field(2, ge=1)  # ASHA: epochs every trial gets before it can be stopped
    reduction_factor: int = Field(2, ge=2)
    eval_images: int = Field(0, ge=0)  # validation images scored per epoch on the INT8 model (0: all)
    seed: int = 42
    max_failures: int = Field(0, ge=0)
    train_best: bool = True  # train the best configuration fully (base.epochs) and export it
    space: SearchSpace = SearchSpace()
    base: DigitsConfig = DigitsConfig()  # every trial starts from this digits config (data_sources, classes...)

    @model_validator(mode="after")
    def _budget(self) -> "TuneConfig":
        if self.grace_period > self.epochs_per_trial:
            raise ValueError(f"grace_period ({self.grace_period}) exceeds epochs_per_trial ({self.epochs_per_trial})")
        return self

    @property
    def experiment_dir(self) -> Path:
        return (Path(self.storage_path) / self.name).resolve()

    def with_absolute_paths(self) -> "TuneConfig":
        """Storage and the base config's data sources resolved as `experiments.paths` does for both halves: trials
        run in folders of their own, and a Ray job's working-dir copy is deleted with the job. (Trials export into
        the experiment, so the base's export_dir is not used here.)"""
        storage = Path(paths.output_location(self.storage_path, "storage_path"))
        return self.model_copy(update={"storage_path": storage, "base": self.base.with_absolute_inputs()})


def load_tune_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> TuneConfig:
    return load_config(TuneConfig, path, overrides, kind="digits")
