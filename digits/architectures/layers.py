"""Building blocks shared by every family: Conv -> BatchNorm -> ReLU/ReLU6 as separate layers.

Keeping the activation a separate layer after BatchNorm is the pattern that both INT8 TFLite conversion
(conv + BN + ReLU fold into one int8 conv) and tfmot quantization-aware training recognise.

Blocks take the Keras module from `keras_api()`, Keras 3 by default; `use_keras(tf_keras)` rebuilds the same
architecture with tf-keras for QAT, so there is one definition of every block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from types import ModuleType
from typing import Any, Literal

Activation = Literal["relu", "relu6", None]
_KERAS: ContextVar[ModuleType | None] = ContextVar("digits_keras_api", default=None)


def keras_api() -> ModuleType:
    """The Keras module blocks build with: Keras 3 unless a `use_keras` block says otherwise."""
    module = _KERAS.get()
    if module is None:
        import keras

        return keras
    return module


@contextlib.contextmanager
def use_keras(module: ModuleType) -> Iterator[None]:
    """Build models with `module` (e.g. tf_keras) inside this block."""
    token = _KERAS.set(module)
    try:
        yield
    finally:
        _KERAS.reset(token)


def model_input(input_shape: tuple[int, int, int]) -> Any:
    return keras_api().Input(shape=input_shape, name="image")


def activation(x: Any, kind: Activation) -> Any:
    if kind is None:
        return x
    return keras_api().layers.ReLU(max_value=6.0 if kind == "relu6" else None)(x)


def batch_norm(x: Any) -> Any:
    """BatchNorm with momentum 0.9 (PyTorch's 0.1): Keras' 0.99 leaves the inference statistics far from the
    batch statistics for the first few hundred steps, which short runs and small meter datasets never pass."""
    return keras_api().layers.BatchNormalization(momentum=0.9)(x)


def conv_bn_act(x: Any, filters: int, kernel_size: int = 3, strides: int = 1, act: Activation = "relu") -> Any:
    """Conv2D (no bias: BatchNorm has one) -> BatchNorm -> activation."""
    layers = keras_api().layers
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False)(x)
    return activation(batch_norm(x), act)


def depthwise_bn_act(x: Any, kernel_size: int = 3, strides: int = 1, act: Activation = "relu") -> Any:
    layers = keras_api().layers
    x = layers.DepthwiseConv2D(kernel_size, strides=strides, padding="same", use_bias=False)(x)
    return activation(batch_norm(x), act)


def max_pool(x: Any) -> Any:
    return keras_api().layers.MaxPooling2D(2)(x)


def _shortcut(x: Any, filters: int, strides: int) -> Any:
    """Identity when shapes match, else a strided 1x1 Conv -> BatchNorm projection."""
    if strides == 1 and x.shape[-1] == filters:
        return x
    return conv_bn_act(x, filters, kernel_size=1, strides=strides, act=None)


def residual_block(x: Any, filters: int, strides: int = 1) -> Any:
    """ResNet basic block: two 3x3 conv-BN, added to the (projected) input, then ReLU."""
    shortcut = _shortcut(x, filters, strides)
    y = conv_bn_act(x, filters, strides=strides)
    y = conv_bn_act(y, filters, act=None)
    return activation(keras_api().layers.Add()([shortcut, y]), "relu")


def inverted_residual(x: Any, filters: int, expansion: int, strides: int = 1) -> Any:
    """MobileNetV2 block: 1x1 expand (ReLU6) -> 3x3 depthwise (ReLU6) -> 1x1 linear project, + input if shapes match."""
    y = conv_bn_act(x, x.shape[-1] * expansion, kernel_size=1, act="relu6") if expansion > 1 else x
    y = depthwise_bn_act(y, strides=strides, act="relu6")
    y = conv_bn_act(y, filters, kernel_size=1, act=None)
    if strides == 1 and x.shape[-1] == filters:
        y = keras_api().layers.Add()([x, y])
    return y


def ghost_module(x: Any, filters: int, act: Activation = "relu") -> Any:
    """GhostNet module: half the maps from a 1x1 conv, the other half from a cheap depthwise conv of those."""
    primary = conv_bn_act(x, filters // 2, kernel_size=1, act=act)
    cheap = depthwise_bn_act(primary, act=act)
    return keras_api().layers.Concatenate()([primary, cheap])


def ghost_bottleneck(x: Any, hidden: int, filters: int, strides: int = 1) -> Any:
    """GhostNet bottleneck: ghost expand -> (strided depthwise) -> linear ghost project, + shortcut."""
    y = ghost_module(x, hidden)
    if strides > 1:
        y = depthwise_bn_act(y, strides=strides, act=None)
    y = ghost_module(y, filters, act=None)
    return keras_api().layers.Add()([_shortcut(x, filters, strides), y])


def classifier(x: Any, nb_classes: int, hidden_units: int = 0, dropout: float = 0.0, flatten: bool = False) -> Any:
    """Pool (global average, or flatten for the small-map plain CNNs) -> [Dense -> ReLU -> Dropout] -> softmax."""
    layers = keras_api().layers
    x = layers.Flatten()(x) if flatten else layers.GlobalAveragePooling2D()(x)
    if hidden_units:
        x = activation(layers.Dense(hidden_units)(x), "relu")
    if dropout:
        x = layers.Dropout(dropout)(x)
    x = layers.Dense(nb_classes)(x)
    return layers.Softmax(name="probabilities")(x)


def functional_model(inputs: Any, outputs: Any, name: str) -> Any:
    return keras_api().Model(inputs, outputs, name=name)
