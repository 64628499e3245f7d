"""Quantization-aware training: tf-keras + tensorflow-model-optimization, confined to this module.

tfmot only understands tf-keras (Keras 2) models, so the trained Keras 3 model is rebuilt from the same
registry factory under `use_keras(tf_keras)`, its weights copied over (same layers in the same order),
wrapped with `quantize_model` (fake-quant nodes, Conv+BN+ReLU folded as TFLite will fold them), fine-tuned
for a few epochs at a tenth of the learning rate, and converted to full-integer TFLite.

Those fine-tuning epochs are training like any other: `digits tune` counts them in its budget (`qat_epochs`),
and runs them once per trial, where the INT8 model is scored, never per epoch. TensorFlow is imported only
when a model is built, so the budget arithmetic here stays importable without it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from digits.architectures import build_model, resolve_name
from digits.architectures.layers import use_keras
from digits.config import DigitsConfig
from experiments.errors import UserError

if TYPE_CHECKING:
    from digits.data.datasets import DigitsData

log = logging.getLogger(__name__)

QAT_EPOCH_FRACTION = 0.2
QAT_MAX_EPOCHS = 10
QAT_LR_FACTOR = 0.1


def qat_available() -> None:
    """Raise a UserError when tf-keras or tensorflow-model-optimization are not installed."""
    try:
        import tensorflow_model_optimization  # noqa: F401
        import tf_keras  # noqa: F401
    except ImportError as err:
        raise UserError(
            f"use_qat needs tf-keras and tensorflow-model-optimization ({err}); install "
            "glyphray[digits] or set use_qat=false"
        ) from None


def qat_epochs_for(epochs: int) -> int:
    """A fifth of `epochs` (1..10): QAT only adapts trained weights to the INT8 grid."""
    return max(1, min(QAT_MAX_EPOCHS, round(epochs * QAT_EPOCH_FRACTION)))


def qat_epochs(cfg: DigitsConfig) -> int:
    """The QAT fine-tuning epochs after training `cfg` for `cfg.epochs`."""
    return qat_epochs_for(cfg.epochs)


def to_tf_keras(model, cfg: DigitsConfig):
    """The same architecture built with tf-keras, carrying the trained Keras 3 weights."""
    import tf_keras

    with use_keras(tf_keras):
        legacy = build_model(resolve_name(cfg.model_architecture), tuple(model.input_shape[1:]), cfg.nb_classes)
    weights = model.get_weights()
    expected = [w.shape for w in legacy.get_weights()]
    if [w.shape for w in weights] != expected:
        raise RuntimeError(
            f"{cfg.model_architecture}: tf-keras rebuild has different weights than the Keras 3 "
            "model (a family builds layers conditionally on the Keras version?)"
        )
    legacy.set_weights(weights)
    return legacy


def quantization_aware_finetune(model, cfg: DigitsConfig, data: DigitsData, verbose: int = 2):
    """Fine-tune a fake-quantized copy of `model`; returns the tf-keras QAT model (digits.export.int8 converts it)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras

    from digits.training.objective import make_loss

    qat = tfmot.quantization.keras.quantize_model(to_tf_keras(model, cfg))
    qat.compile(
        optimizer=tf_keras.optimizers.Adam(cfg.learning_rate * QAT_LR_FACTOR),
        loss=make_loss(cfg, tf_keras.losses),
        metrics=["accuracy"],
    )
    epochs = qat_epochs(cfg)
    log.info("quantization-aware fine-tuning for %d epoch(s)", epochs)
    qat.fit(
        data.train,
        epochs=epochs,
        steps_per_epoch=data.steps_per_epoch,
        validation_data=data.validation,
        verbose=verbose,
    )
    return qat
