"""What training minimises and how: the loss and the optimizer of a digits config, on a built model.

The loss is built for Keras 3 or for tf-keras (`losses=tf_keras.losses`), so quantization-aware fine-tuning
(`digits.export.qat`) optimises the same objective as training.
"""

from __future__ import annotations

import keras

from digits.config import DigitsConfig


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """The config's optimizer by name; SGD gets momentum 0.9, without which it barely moves in few epochs."""
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    optimizers = {
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
        "nadam": keras.optimizers.Nadam,
        "adamw": keras.optimizers.AdamW,
    }
    return optimizers[name](learning_rate)


def make_loss(cfg: DigitsConfig, losses=keras.losses):
    """Focal loss when `focal_gamma` > 0 (hard digits weigh more), else cross-entropy with label smoothing.

    `losses` is `keras.losses` or tf_keras' for QAT, so both trainings optimise the same objective.
    """
    if cfg.focal_gamma > 0:
        return losses.CategoricalFocalCrossentropy(alpha=cfg.focal_alpha, gamma=cfg.focal_gamma)
    return losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)


def set_dropout(model: keras.Model, rate: float | None) -> None:
    """Give every Dropout layer `rate` (None keeps the architecture's own); rates are read at call time."""
    if rate is None:
        return
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = float(rate)


def compile_model(model: keras.Model, cfg: DigitsConfig) -> None:
    set_dropout(model, cfg.dropout)
    model.compile(optimizer=make_optimizer(cfg.optimizer, cfg.learning_rate), loss=make_loss(cfg), metrics=["accuracy"])
