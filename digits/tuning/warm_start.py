"""Warm-start points: each tuned architecture with the settings it is known to train well with.

A search that starts at random spends its first trials rediscovering what users already know. These points,
one per architecture (`digits.architectures.registry.known_good_settings`: the original's defaults and the
architecture's own dropout), are the first trials Optuna runs (`enqueue_trial`, through OptunaSearch's
`points_to_evaluate`); TPE then models around them. A setting outside the tune file's space is left out of
the point, so Optuna samples that knob instead of running something the user excluded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from digits.tuning.config import SearchSpace
from digits.tuning.space import KNOBS, contains, is_asked, knob_spec

KnownGood = Callable[[str], dict[str, Any]]


def _knob_values(settings: dict[str, Any]) -> dict[str, Any]:
    """Registry settings (digits config keys) as tuned knobs."""
    values = {knob: settings[knob] for knob in KNOBS if knob in settings}
    if "use_qat" in settings:
        values["quantization"] = "qat" if settings["use_qat"] else "ptq"
    return values


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


def warm_start_points(space: SearchSpace, known_good: KnownGood | None = None) -> list[dict[str, Any]]:
    """One point per tuned architecture (in the space's order), duplicates dropped."""
    if known_good is None:
        from digits.architectures.registry import known_good_settings

        known_good = known_good_settings
    points: list[dict[str, Any]] = []
    for architecture in space.architectures:
        point = warm_start_point(space, architecture, known_good(architecture))
        if point and point not in points:
            points.append(point)
    return points
