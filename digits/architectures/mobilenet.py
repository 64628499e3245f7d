"""MobileNetV2-style family: inverted residuals with linear bottlenecks and ReLU6 (ESP-NN friendly)."""

from __future__ import annotations

from typing import Any

from digits.architectures.layers import classifier, conv_bn_act, functional_model, inverted_residual, model_input
from digits.architectures.registry import register_model


@register_model("digit_recognizer_v16")
def digit_recognizer_v16(input_shape: tuple[int, int, int], nb_classes: int) -> Any:
    """Inverted residuals (expansion 1-4) down to 4x3, a 1x1 conv to 128 maps, classifier (~50k params)."""
    inputs = model_input(input_shape)
    x = conv_bn_act(inputs, 16, act="relu6")
    # (filters, expansion, stride)
    for filters, expansion, strides in ((16, 1, 1), (24, 4, 2), (24, 4, 1), (32, 4, 2), (32, 4, 1), (48, 4, 2)):
        x = inverted_residual(x, filters, expansion, strides)
    x = conv_bn_act(x, 128, kernel_size=1, act="relu6")
    return functional_model(inputs, classifier(x, nb_classes, 0, 0.2), "digit_recognizer_v16")
