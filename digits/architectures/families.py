"""Imports every family module so their `@register_model` decorators run (the registry loads this lazily)."""
from digits.architectures import ghostnet, mobilenet, plain, residual  # noqa: F401
