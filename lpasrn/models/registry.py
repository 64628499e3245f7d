"""Every model an experiment can name, in one registry like timm's: `create_model(name, **overrides)`, `list_models()`.

Generators are the SwinIR presets (`swinir_*`), OCRs the PARSeq sizes and the slot CNNs. The models know nothing of
the experiment config: `lpasrn.model_factory` maps a config to them, and `lpasrn list-models` prints them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from torch import nn

from lpasrn.models.parseq import PARSEQ_SIZES, create_parseq
from lpasrn.models.slot_ocr import SLOT_OCR_SIZES, create_slot_ocr
from lpasrn.models.swinir import GENERATOR_PRESETS

ModelKind = Literal["generator", "ocr"]


@dataclass(frozen=True)
class RegisteredModel:
    kind: ModelKind
    create: Callable[..., nn.Module]  # randomly initialised; keyword arguments override the registered settings


MODELS: dict[str, RegisteredModel] = {
    **{name: RegisteredModel("generator", preset.build) for name, preset in GENERATOR_PRESETS.items()},
    **{name: RegisteredModel("ocr", partial(create_parseq, name)) for name in PARSEQ_SIZES},
    **{name: RegisteredModel("ocr", partial(create_slot_ocr, name)) for name in SLOT_OCR_SIZES},
}


def list_models(kind: ModelKind | None = None) -> list[str]:
    """Registered names of one kind (or all), sorted."""
    return sorted(name for name, entry in MODELS.items() if kind is None or entry.kind == kind)


def create_model(name: str, **overrides: Any) -> nn.Module:
    """A randomly initialised registered model; generators take `scale` (default 2) among the overrides."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r} (expected one of {list_models()})")
    return MODELS[name].create(**overrides)
