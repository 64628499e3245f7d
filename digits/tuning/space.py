"""The define-by-run search space and what makes two trial configurations "the same".

Optuna asks for knobs one by one, so the space can branch: focal alpha is asked only when focal gamma > 0,
label smoothing only when it is 0, and an architecture may replace any range (`per_architecture`), in which
case that knob is asked under `<knob>@<architecture>` so TPE models it per architecture.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from digits.config import DigitsConfig
from digits.tuning.config import FloatRange, SearchSpace

KNOBS = (
    "optimizer",
    "learning_rate",
    "batch_size",
    "focal_gamma",
    "focal_alpha",
    "label_smoothing",
    "dropout",
    "quantization",
)
_SPACE_FIELD = {"optimizer": "optimizers"}  # knob -> SearchSpace field when the names differ
_SIGNIFICANT_DIGITS = 12


def knob_spec(space: SearchSpace, knob: str, architecture: str) -> tuple[Any, str]:
    """(range or choices, Optuna parameter name) of `knob` for `architecture`."""
    field = _SPACE_FIELD.get(knob, knob)
    overrides = space.per_architecture.get(architecture, {})
    if field in overrides:
        return overrides[field], f"{knob}@{architecture}"
    return getattr(space, field), knob


def is_asked(spec: Any) -> bool:
    """Whether Optuna is asked for a knob with this range or these choices (a single value is fixed, not asked)."""
    if isinstance(spec, dict):
        spec = FloatRange.model_validate(spec)
    if isinstance(spec, FloatRange):
        return spec.low != spec.high
    return len(spec) > 1


def contains(spec: Any, value: Any) -> bool:
    """Whether `value` is one of the choices, or inside the range (and on its grid when it has a step)."""
    if isinstance(spec, dict):
        spec = FloatRange.model_validate(spec)
    if isinstance(spec, FloatRange):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not spec.low <= value <= spec.high:
            return False
        return spec.step is None or abs((value - spec.low) / spec.step - round((value - spec.low) / spec.step)) < 1e-9
    return value in list(spec)


def _typed(spec: Any, value: Any) -> Any:
    """Integer choices stay integers (a results table read back with gaps turns 32 into 32.0)."""
    if (
        isinstance(spec, list)
        and spec
        and all(isinstance(c, int) and not isinstance(c, bool) for c in spec)
        and isinstance(value, float)
        and value.is_integer()
    ):
        return int(value)
    return value


def _suggest(trial: Any, name: str, spec: Any) -> Any:
    if isinstance(spec, FloatRange):
        if spec.low == spec.high:
            return spec.low
        return trial.suggest_float(name, spec.low, spec.high, log=spec.log, step=spec.step)
    if isinstance(spec, dict):  # a per_architecture range left as a plain mapping
        return _suggest(trial, name, FloatRange.model_validate(spec))
    choices = list(spec)
    return choices[0] if len(choices) == 1 else trial.suggest_categorical(name, choices)


class DefineByRun:
    """Callable handed to OptunaSearch(space=...): asks the knobs in order, branching on earlier answers.

    A class rather than a closure so the searcher (which Tune pickles into the experiment) can be restored.
    """

    def __init__(self, space: SearchSpace):
        self.space = space

    def __call__(self, trial: Any) -> None:
        architecture = _suggest(trial, "architecture", self.space.architectures)
        gamma = None
        for knob in KNOBS:
            if knob == "focal_alpha" and not gamma or knob == "label_smoothing" and gamma:
                continue
            spec, name = knob_spec(self.space, knob, architecture)
            value = _suggest(trial, name, spec)
            if knob == "focal_gamma":
                gamma = value
        return None


def hyperparameters(config: dict[str, Any], space: SearchSpace) -> dict[str, Any]:
    """The canonical knobs of a trial config: per-architecture names folded back, knobs with no effect dropped.

    Knobs fixed by a one-value range are not asked by Optuna, so they are filled in from the space here.
    """
    architecture = config.get("architecture", space.architectures[0])
    values: dict[str, Any] = {"architecture": architecture}
    for knob in KNOBS:
        spec, name = knob_spec(space, knob, architecture)
        if name in config:
            values[knob] = _typed(spec, config[name])
        elif knob in config:
            values[knob] = _typed(spec, config[knob])
        elif isinstance(spec, FloatRange) and spec.low == spec.high or isinstance(spec, list) and len(spec) == 1:
            values[knob] = spec.low if isinstance(spec, FloatRange) else spec[0]
    return canonical(values)


def canonical(values: dict[str, Any]) -> dict[str, Any]:
    """Drop what cannot change training (alpha without focal loss, smoothing with it); round float noise."""
    values = dict(values)
    if float(values.get("focal_gamma", 0.0)) > 0:
        values.pop("label_smoothing", None)
    else:
        values.pop("focal_alpha", None)
    return {
        key: float(f"{value:.{_SIGNIFICANT_DIGITS}g}") if isinstance(value, float) else value
        for key, value in sorted(values.items())
    }


def config_key(values: dict[str, Any]) -> str:
    """A short stable key of a canonical configuration (cache file key)."""
    text = json.dumps(canonical(values), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def trial_digits_config(base: DigitsConfig, values: dict[str, Any], epochs: int, **changes: Any) -> DigitsConfig:
    """The digits config of one trial: `base` with the tuned knobs (and `changes`) applied."""
    gamma = float(values.get("focal_gamma", base.focal_gamma))
    data = {
        **base.model_dump(),
        "model_architecture": values["architecture"],
        "epochs": epochs,
        "optimizer": values.get("optimizer", base.optimizer),
        "learning_rate": values.get("learning_rate", base.learning_rate),
        "batch_size": values.get("batch_size", base.batch_size),
        "focal_gamma": gamma,
        "dropout": values.get("dropout", base.dropout),
        "quantize_model": True,
        "use_qat": values.get("quantization", "qat" if base.use_qat else "ptq") == "qat",
        **changes,
    }
    if gamma > 0:
        data["focal_alpha"] = values.get("focal_alpha", base.focal_alpha)
    else:
        data["label_smoothing"] = values.get("label_smoothing", base.label_smoothing)
    return DigitsConfig.model_validate(data)
