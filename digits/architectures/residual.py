"""Residual family (ResNet basic blocks): v15 for devices, the wide `high_accuracy_validator` for PCs."""

from __future__ import annotations

from typing import Any

from digits.architectures.layers import classifier, conv_bn_act, functional_model, model_input, residual_block
from digits.architectures.registry import register_model


def residual_net(
    name: str,
    input_shape: tuple[int, int, int],
    nb_classes: int,
    stem: int,
    blocks: tuple[tuple[int, int], ...],
    hidden_units: int,
    dropout: float,
) -> Any:
    """Stem conv, then (filters, stride) residual blocks, then the classifier."""
    inputs = model_input(input_shape)
    x = conv_bn_act(inputs, stem)
    for filters, strides in blocks:
        x = residual_block(x, filters, strides)
    return functional_model(inputs, classifier(x, nb_classes, hidden_units, dropout), name)


@register_model("digit_recognizer_v15")
def digit_recognizer_v15(input_shape: tuple[int, int, int], nb_classes: int) -> Any:
    """IoT residual model (~80k params): skip connections train deeper nets than v4 at a similar size."""
    return residual_net("digit_recognizer_v15", input_shape, nb_classes, 16, ((16, 1), (32, 2), (64, 2)), 0, 0.2)


@register_model("high_accuracy_validator", embedded=False)
def high_accuracy_validator(input_shape: tuple[int, int, int], nb_classes: int) -> Any:
    """Wide residual net (~730k params) for checking labels on a PC; too large for a microcontroller."""
    blocks = ((32, 1), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1))
    return residual_net("high_accuracy_validator", input_shape, nb_classes, 32, blocks, 256, 0.5)
