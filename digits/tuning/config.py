"""Typed `digits tune` settings (experiments/digits/tune.yaml): budget, objective, search space, base run."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from digits.config import DigitsConfig, Optimizer
from experiments import paths, storage
from experiments.config import StrictModel, load_config

Quantization = Literal["ptq", "qat"]
# The search space's default choices (every one there is)
DEFAULT_OPTIMIZERS: tuple[Optimizer, ...] = ("adam", "rmsprop", "sgd", "nadam", "adamw")
DEFAULT_QUANTIZATIONS: tuple[Quantization, ...] = ("ptq", "qat")


# The results table the driver rewrites as trials end (`outputs` writes it, `mirror` brings it back on --resume).
RESULTS_CSV = "detailed_tuning_results.csv"
RESULTS_PARQUET = "detailed_tuning_results.parquet"


class FloatRange(StrictModel):
    """A float sampled in [low, high], log-uniform when `log`; `step` makes it discrete (so repeats occur)."""

    low: float
    high: float
    log: bool = False
    step: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
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

    architectures: list[str] = Field(
        default_factory=lambda: ["digit_recognizer_v6", "digit_recognizer_v7", "digit_recognizer_v4"], min_length=1
    )
    optimizers: list[Optimizer] = Field(default_factory=lambda: list(DEFAULT_OPTIMIZERS), min_length=1)
    learning_rate: FloatSpec = FloatRange(low=1e-4, high=1e-2, log=True)
    batch_size: list[int] = Field(default_factory=lambda: [16, 32, 64], min_length=1)
    focal_gamma: list[float] = Field(default_factory=lambda: [0.0, 1.0, 2.0], min_length=1)
    focal_alpha: FloatSpec = FloatRange(low=0.1, high=0.5)
    label_smoothing: FloatSpec = FloatRange(low=0.0, high=0.2)
    dropout: FloatSpec = FloatRange(low=0.0, high=0.5)
    quantization: list[Quantization] = Field(default_factory=lambda: list(DEFAULT_QUANTIZATIONS), min_length=1)
    # Per-architecture replacements of the ranges above (e.g. smaller batches for a large model): the space is
    # conditional on the architecture, and Optuna learns each architecture's knob separately.
    per_architecture: dict[str, dict[str, FloatSpec | list[int] | list[str]]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_overrides(self) -> SearchSpace:
        tunable = {
            "optimizers",
            "learning_rate",
            "batch_size",
            "focal_gamma",
            "focal_alpha",
            "label_smoothing",
            "dropout",
            "quantization",
        }
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
    storage_path: Path | str = Path("runs/tune")  # a folder, or s3://bucket/prefix / gs://... (see experiment_dir)
    objective: Literal["single", "multi"] = "single"  # single: INT8 accuracy; multi: + INT8 size (Pareto front)
    # Budget: total trial-epochs, all training counted (QAT fine-tuning too); num_samples caps the trials.
    budget_epochs: int | None = Field(120, ge=1)
    num_samples: int | None = Field(None, ge=1)
    max_concurrent: int = Field(2, ge=1)
    cpus_per_trial: float = Field(1.0, gt=0)
    gpus_per_trial: float = Field(0.0, ge=0)
    epochs_per_trial: int = Field(10, ge=1)
    # Early stopping on the best float validation accuracy so far (every epoch, free): at epochs
    # grace_period * reduction_factor^k a trial is stopped when it trails the rung's top 1/reduction_factor by
    # more than cut_margin standard errors of a difference of two accuracies on the validation images.
    grace_period: int = Field(3, ge=1)
    reduction_factor: int = Field(3, ge=2)
    cut_margin: float = Field(2.0, ge=0)
    sampler: Literal["tpe", "random"] = "tpe"
    n_startup_trials: int | None = Field(None, ge=0)  # random proposals before TPE (None: 2 after warm starts)
    warm_start: bool = True  # try each architecture's known-good settings (the registry's) first
    # ... moved for trials shorter than base.epochs (the training they are known for): smallest batch size, and
    # the learning rate raised by sqrt(full training's optimizer steps / a trial's), within the space; QAT
    warm_start_for_trial_length: bool = True
    eval_images: int = Field(0, ge=0)  # validation images the final INT8 model is scored on (0: all)
    seed: int = 42
    max_failures: int = Field(0, ge=0)
    train_best: bool = True  # train the best configuration fully (base.epochs) and export it
    space: SearchSpace = SearchSpace()
    base: DigitsConfig = DigitsConfig()  # every trial starts from this digits config (data_sources, classes...)

    @field_validator("storage_path", mode="before")
    @classmethod
    def _uri_or_path(cls, value: object) -> object:
        return paths.path_or_uri(value)

    @model_validator(mode="after")
    def _budget(self) -> TuneConfig:
        if self.grace_period > self.epochs_per_trial:
            raise ValueError(f"grace_period ({self.grace_period}) exceeds epochs_per_trial ({self.epochs_per_trial})")
        if self.budget_epochs is None and self.num_samples is None:
            raise ValueError("set budget_epochs (trial-epochs to spend) or num_samples (trials to run), or both")
        if self.budget_epochs is not None and self.budget_epochs < self.max_trial_epochs:
            raise ValueError(
                f"budget_epochs ({self.budget_epochs}) is less than one trial's "
                f"{self.max_trial_epochs} epochs (epochs_per_trial, plus QAT fine-tuning if it is tuned)"
            )
        return self

    @property
    def qat_epochs(self) -> int:
        """Epochs of QAT fine-tuning a QAT trial adds after its epochs_per_trial (counted in the budget)."""
        from digits.export.qat import qat_epochs_for

        return qat_epochs_for(self.epochs_per_trial)

    @property
    def max_trial_epochs(self) -> int:
        """The most trial-epochs one trial can cost: its epochs, plus QAT fine-tuning if any trial may use QAT."""
        choices = [self.space.quantization] + [
            spec.get("quantization", []) for spec in self.space.per_architecture.values()
        ]
        return self.epochs_per_trial + (self.qat_epochs if any("qat" in c for c in choices) else 0)

    @property
    def experiment_location(self) -> str:
        """`<storage_path>/<name>`: an absolute folder, or a URI where Tune keeps its state and the outputs go."""
        if storage.is_uri(self.storage_path):
            return storage.join(self.storage_path, self.name)
        return str((Path(self.storage_path) / self.name).resolve())

    @property
    def experiment_dir(self) -> Path:
        """The local folder of the driver's own files (Optuna journal, result cache, rungs, outputs): the experiment
        itself on a disk; for a URI, a scratch folder at a fixed path, mirrored to the bucket as trials end."""
        location = self.experiment_location
        return storage.scratch_folder(location) if storage.is_uri(location) else Path(location)

    def with_absolute_paths(self) -> TuneConfig:
        """Storage and the base config's data sources resolved as `experiments.paths` does for both halves: trials
        run in folders of their own, and a Ray job's working-dir copy is deleted with the job. (Trials export into
        the experiment, so the base's export_dir is not used here.)"""
        location = paths.path_or_uri(paths.output_location(self.storage_path, "storage_path"))
        return self.model_copy(update={"storage_path": location, "base": self.base.with_absolute_inputs()})


def load_tune_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> TuneConfig:
    return load_config(TuneConfig, path, overrides, kind="digits")
