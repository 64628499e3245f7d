"""Architecture registry: `@register_model("name")` factories, `create_model(name, cfg)`, `list_models()`.

A factory takes the input shape (H, W, C) and the class count and returns an uncompiled Keras model whose
last layer is a softmax. Registering is all it takes for a new family to be trained, exported, listed and
tested (the tests are parametrised over `list_models()`). `known_good_settings(name)` is what an architecture
is known to train well with (the original's defaults, its own dropout, its registration's `recipe`):
`digits tune` starts its search from there.

This module knows no family: the package's `__init__` imports them (any import of this module runs it first),
so the registry is full whenever it is read and a family importing `register_model` closes no import circle.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from experiments.errors import UserError

if TYPE_CHECKING:
    from digits.config import DigitsConfig

ModelFactory = Callable[[tuple[int, int, int], int], Any]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: ModelFactory
    embedded: bool
    description: str
    recipe: Mapping[str, Any]


_MODELS: dict[str, ModelEntry] = {}
_ALIASES: dict[str, str] = {}


def register_model(
    name: str, *, aliases: tuple[str, ...] = (), embedded: bool = True, recipe: Mapping[str, Any] | None = None
) -> Callable[[ModelFactory], ModelFactory]:
    """Register a factory under `name` (and `aliases`). `embedded=False` marks PC-only models (no INT8 export).

    `recipe`: digits config keys this architecture trains better with than the original's defaults (e.g. a
    smaller learning rate for a deep model); `known_good_settings` applies them.
    """

    def decorator(factory: ModelFactory) -> ModelFactory:
        for key in (name, *aliases):
            if key in _MODELS or key in _ALIASES:
                raise ValueError(f"architecture {key!r} is registered twice")
        doc = (factory.__doc__ or "").strip().splitlines()
        _MODELS[name] = ModelEntry(name, factory, embedded, doc[0] if doc else "", MappingProxyType(dict(recipe or {})))
        _ALIASES.update({alias: name for alias in aliases})
        return factory

    return decorator


def list_models() -> list[str]:
    """Canonical names of every registered architecture (aliases excluded), sorted."""
    return sorted(_MODELS, key=_natural_key)


def _natural_key(name: str) -> list:
    """`digit_recognizer_v3` before `digit_recognizer_v12`."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def resolve_name(name: str) -> str:
    """The canonical name of `name` or an alias; unknown names are a user error listing the known ones."""
    canonical = _ALIASES.get(name, name)
    if canonical not in _MODELS:
        known = ", ".join(list_models() + sorted(f"{a} (={n})" for a, n in _ALIASES.items()))
        raise UserError(f"unknown architecture {name!r}; known: {known}")
    return canonical


def model_entry(name: str) -> ModelEntry:
    return _MODELS[resolve_name(name)]


def build_model(name: str, input_shape: tuple[int, int, int], nb_classes: int) -> Any:
    """Build architecture `name` for an explicit input shape and class count."""
    entry = model_entry(name)
    height, width, channels = input_shape  # a plain tuple, whatever sequence of three was passed
    return entry.factory((height, width, channels), int(nb_classes))


def create_model(name: str, cfg: DigitsConfig) -> Any:
    """Build architecture `name` for the input shape and class count of a config."""
    return build_model(name, (cfg.input_height, cfg.input_width, cfg.input_channels), cfg.nb_classes)


KNOWN_GOOD_KEYS = (
    "optimizer",
    "learning_rate",
    "batch_size",
    "label_smoothing",
    "focal_gamma",
    "focal_alpha",
    "dropout",
    "use_qat",
)


def known_good_settings(name: str) -> dict[str, Any]:
    """The training settings `name` is known to work with: the original's defaults (`DigitsConfig`), the rate
    of the architecture's own Dropout layers (what `dropout: null` trains with; 0.0 without any), then its
    registration's `recipe`. Builds the model once to read the rate, so every family gets it for free."""
    from digits.config import DigitsConfig

    entry = model_entry(name)
    defaults = DigitsConfig().model_dump()
    settings = {key: defaults[key] for key in KNOWN_GOOD_KEYS}
    model = entry.factory((32, 20, 1), 10)
    rates = [float(layer.rate) for layer in model.layers if type(layer).__name__ == "Dropout"]
    settings["dropout"] = rates[0] if rates else 0.0
    settings.update(entry.recipe)
    return settings


def family_representatives() -> list[str]:
    """The first architecture of each family module: a quick cross-section for slow checks (e.g. conversion)."""
    firsts: dict[str, str] = {}
    for name in list_models():
        firsts.setdefault(_MODELS[name].factory.__module__, name)
    return list(firsts.values())
