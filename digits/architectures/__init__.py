"""Digit recognizer architectures: a registry of Keras functional models, one module per family."""
from digits.architectures.registry import (build_model, create_model, list_models, model_entry, register_model,
                                           resolve_name)

__all__ = ["build_model", "create_model", "list_models", "model_entry", "register_model", "resolve_name"]
