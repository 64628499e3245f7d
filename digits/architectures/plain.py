"""Plain CNN family: stages of Conv-BN-ReLU followed by 2x2 max pooling, then a small dense head.

The original's v3/v4/v6/v7/v12 and Haverland's CNN differ only in widths, depth and head, so they are rows
of one builder rather than copies of it.
"""

from __future__ import annotations

from typing import Any

from digits.architectures.layers import classifier, conv_bn_act, functional_model, max_pool, model_input
from digits.architectures.registry import register_model

Stages = tuple[tuple[int, int], ...]  # (filters, convolutions) per stage, each stage ends with a 2x2 max pool


def plain_cnn(
    name: str,
    input_shape: tuple[int, int, int],
    nb_classes: int,
    stages: Stages,
    hidden_units: int,
    dropout: float,
    flatten: bool = False,
) -> Any:
    inputs = model_input(input_shape)
    x = inputs
    for filters, convs in stages:
        for _ in range(convs):
            x = conv_bn_act(x, filters)
        x = max_pool(x)
    return functional_model(inputs, classifier(x, nb_classes, hidden_units, dropout, flatten), name)


@register_model("digit_recognizer_v3")
def digit_recognizer_v3(input_shape: tuple[int, int, int], nb_classes: int) -> Any:
    """Three conv stages and a flattened dense head (~60k params): small and fast."""
    return plain_cnn("digit_recognizer_v3", input_shape, nb_classes, ((16, 1), (32, 1), (64, 1)), 64, 0.3, True)


@register_model("digit_recognizer_v4")
def digit_recognizer_v4(input_shape: tuple[int, int, int], nb_classes: int) -> Any:
    """Three wider conv stages, global pooling, dense head (~80k params): the default embedded model."""
    return plain_cnn("digit_recognizer_v4", input_shape, nb_classes, ((32, 1), (64, 1), (96, 1)), 64, 0.3)


@register_model("digit_recognizer_v6")
def digit_recognizer_v6(input_shape: tuple[int, int, int], nb_classes: int) -> Any:
    """The smallest: three narrow stages straight into the classifier (~20k params)."""
    return plain_cnn("digit_recognizer_v6", input_shape, nb_classes, ((16, 1), (32, 1), (48, 1)), 0, 0.2)


@register_model("digit_recognizer_v7")
def digit_recognizer_v7(input_shape: tuple[int, int, int], nb_classes: int) -> Any:
    """Between v6 and v4 (~40k params), tuned for speed on ESP32."""
    return plain_cnn("digit_recognizer_v7", input_shape, nb_classes, ((24, 1), (48, 1), (64, 1)), 64, 0.3)


@register_model("digit_recognizer_v12")
def digit_recognizer_v12(input_shape: tuple[int, int, int], nb_classes: int) -> Any:
    """Two convs per stage (VGG-like, ~300k params): the most accurate plain CNN, still INT8-exportable."""
    return plain_cnn("digit_recognizer_v12", input_shape, nb_classes, ((32, 2), (64, 2), (128, 2)), 128, 0.4)


@register_model("original_haverland", aliases=("cnn32",))
def original_haverland(input_shape: tuple[int, int, int], nb_classes: int) -> Any:
    """Haverland's meter-digit CNN layout: conv pairs, pooling, a 256-unit flattened dense head (~235k params)."""
    return plain_cnn("original_haverland", input_shape, nb_classes, ((32, 2), (64, 2), (64, 1)), 256, 0.5, True)
