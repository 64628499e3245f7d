"""Digit recognizer architectures: a registry of Keras functional models, one module per family.

Importing this package imports every family module, whose `@register_model` decorators fill the registry (as
timm's `models/__init__.py` does). The family modules build layers through `layers.keras_api()` only when a
model is built, so importing them (and `digits --help`, config checks) never starts TensorFlow.
"""

from digits.architectures import ghostnet, mobilenet, plain, residual  # noqa: F401  (registers them)
from digits.architectures.registry import (
    build_model,
    create_model,
    list_models,
    model_entry,
    register_model,
    resolve_name,
)

__all__ = ["build_model", "create_model", "list_models", "model_entry", "register_model", "resolve_name"]
