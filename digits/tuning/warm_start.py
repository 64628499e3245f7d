"""Warm-start points: each tuned architecture with the settings it is known to train well with.

A search that starts at random spends its first trials rediscovering what users already know. These points,
one per architecture (`digits.architectures.registry.known_good_settings`: the original's defaults and the
architecture's own dropout), are the first trials Optuna runs (`enqueue_trial`, through OptunaSearch's
`points_to_evaluate`); TPE then models around them. A setting outside the tune file's space is left out of
the point, so Optuna samples that knob instead of running something the user excluded.

Those settings are known to work for a full training (`base.epochs`, 100 by default). A trial that trains for
fewer epochs takes a fraction of its optimizer steps, and at the full training's batch size and learning rate
it is still near chance when it ends (5-epoch trials on 300 images: 0.3-0.7 validation accuracy). So for short
trials the point is moved towards the same progress in fewer steps (`for_trial_length`): the smallest batch
size the space allows the architecture (more steps per epoch), and the learning rate raised by the square root
of the ratio of the full training's optimizer steps to the trial's (the square-root rule of adaptive
optimizers), capped by the space, and QAT where the space allows it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from digits.tuning.config import FloatRange, SearchSpace, TuneConfig
from digits.tuning.space import KNOBS, contains, is_asked, knob_spec

KnownGood = Callable[[str], dict[str, Any]]


def _knob_values(settings: dict[str, Any]) -> dict[str, Any]:
    """Registry settings (digits config keys) as tuned knobs."""
    values = {knob: settings[knob] for knob in KNOBS if knob in settings}
    if "use_qat" in settings:
        values["quantization"] = "qat" if settings["use_qat"] else "ptq"
    return values


def _within(spec: Any, value: float) -> float:
    """`value` moved into a learning-rate range (onto its grid) or to the nearest of its choices."""
    if isinstance(spec, dict):
        spec = FloatRange.model_validate(spec)
    if isinstance(spec, FloatRange):
        value = min(max(value, spec.low), spec.high)
        if spec.step is not None:
            value = min(spec.low + round((value - spec.low) / spec.step) * spec.step, spec.high)
        return value
    return min(spec, key=lambda choice: abs(math.log(choice / value)))


def for_trial_length(
    space: SearchSpace, architecture: str, settings: dict[str, Any], trial_epochs: int, full_epochs: int
) -> dict[str, Any]:
    """Known-good `settings` of a `full_epochs` training, moved for a trial of `trial_epochs` (module docstring):
    the smallest batch size of the space, the learning rate times sqrt(full steps / trial steps), within the
    space, QAT. Unchanged when the trial is not shorter, or without a known batch size and learning rate."""
    batch, rate = settings.get("batch_size"), settings.get("learning_rate")
    if trial_epochs >= full_epochs or not batch or not rate:
        return dict(settings)
    batch_spec, _ = knob_spec(space, "batch_size", architecture)
    rate_spec, _ = knob_spec(space, "learning_rate", architecture)
    smallest = min(int(b) for b in batch_spec)
    steps_ratio = (full_epochs / trial_epochs) * (batch / smallest)  # optimizer steps: full training / trial
    raised = float(f"{rate * math.sqrt(steps_ratio):.3g}")
    # QAT where the space allows it: its fine-tuning (a fifth of the trial, counted in the budget) goes on
    # training a model far from converged, on the INT8 grid it is scored on
    return {**settings, "batch_size": smallest, "learning_rate": _within(rate_spec, raised), "use_qat": True}


def warm_start_point(space: SearchSpace, architecture: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The Optuna parameters (per-architecture names included) of `architecture` with `settings`, within the
    space: knobs that are not asked (one value) or whose known value is outside the space are left out, and
    alpha / smoothing only when the focal gamma they depend on is known."""
    values = _knob_values(settings)
    point: dict[str, Any] = {}
    if is_asked(space.architectures):
        point["architecture"] = architecture
    gamma_spec, gamma_name = knob_spec(space, "focal_gamma", architecture)
    gamma = None
    if not is_asked(gamma_spec):
        gamma = gamma_spec.low if hasattr(gamma_spec, "low") else list(gamma_spec)[0]
    elif contains(gamma_spec, values.get("focal_gamma")):
        gamma = values["focal_gamma"]
    for knob in KNOBS:
        if (
            knob == "focal_alpha"
            and (gamma is None or gamma == 0)
            or knob == "label_smoothing"
            and (gamma is None or gamma > 0)
        ):
            continue
        spec, name = knob_spec(space, knob, architecture)
        if is_asked(spec) and knob in values and contains(spec, values[knob]):
            point[name] = values[knob]
    return point


def warm_start_points(
    space: SearchSpace,
    known_good: KnownGood | None = None,
    trial_epochs: int | None = None,
    full_epochs: int | None = None,
) -> list[dict[str, Any]]:
    """One point per tuned architecture (in the space's order), duplicates dropped; with `trial_epochs` shorter
    than `full_epochs` (the training the settings are known for), moved for the trial's length."""
    if known_good is None:
        from digits.architectures.registry import known_good_settings

        known_good = known_good_settings
    points: list[dict[str, Any]] = []
    for architecture in space.architectures:
        settings = known_good(architecture)
        if trial_epochs is not None and full_epochs is not None:
            settings = for_trial_length(space, architecture, settings, trial_epochs, full_epochs)
        point = warm_start_point(space, architecture, settings)
        if point and point not in points:
            points.append(point)
    return points


def experiment_warm_start_points(tcfg: TuneConfig) -> list[dict[str, Any]]:
    """The warm-start points of an experiment: none without `warm_start`; moved for its trials' length (shorter
    than base.epochs) with `warm_start_for_trial_length`."""
    if not tcfg.warm_start:
        return []
    if tcfg.warm_start_for_trial_length:
        return warm_start_points(tcfg.space, trial_epochs=tcfg.epochs_per_trial, full_epochs=tcfg.base.epochs)
    return warm_start_points(tcfg.space)
