"""GhostNet-style family: ghost bottlenecks make half their feature maps with cheap depthwise convolutions."""

from __future__ import annotations

from typing import Any

from digits.architectures.layers import classifier, conv_bn_act, functional_model, ghost_bottleneck, model_input
from digits.architectures.registry import register_model


@register_model("digit_recognizer_v17")
def digit_recognizer_v17(input_shape: tuple[int, int, int], nb_classes: int) -> Any:
    """Ghost bottlenecks down to 4x3, a 1x1 conv to 128 maps, classifier (~50k params, few MACs)."""
    inputs = model_input(input_shape)
    x = conv_bn_act(inputs, 16)
    # (hidden, filters, stride)
    for hidden, filters, strides in ((32, 16, 1), (48, 24, 2), (72, 24, 1), (96, 40, 2), (120, 40, 1), (160, 64, 2)):
        x = ghost_bottleneck(x, hidden, filters, strides)
    x = conv_bn_act(x, 128, kernel_size=1)
    return functional_model(inputs, classifier(x, nb_classes, 0, 0.2), "digit_recognizer_v17")
