"""Focal loss and dropout knobs of the trainer: off by default (the original's behaviour), applied when set."""

from __future__ import annotations

from digits.training.runtime import limit_threads

limit_threads(1)

import keras  # noqa: E402

from digits.architectures import create_model  # noqa: E402
from digits.config import load_digits_config  # noqa: E402
from digits.training.objective import compile_model, make_loss  # noqa: E402


def test_default_loss_is_cross_entropy_with_label_smoothing():
    loss = make_loss(load_digits_config(None))
    assert isinstance(loss, keras.losses.CategoricalCrossentropy) and loss.label_smoothing == 0.1


def test_focal_gamma_selects_focal_loss_with_alpha():
    loss = make_loss(load_digits_config(None, ["focal_gamma=2.0", "focal_alpha=0.4"]))
    assert isinstance(loss, keras.losses.CategoricalFocalCrossentropy)
    assert (loss.gamma, loss.alpha) == (2.0, 0.4)


def dropout_rates(cfg) -> list[float]:
    model = create_model(cfg.model_architecture, cfg)
    compile_model(model, cfg)
    return [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]


def test_dropout_override_sets_every_dropout_layer_and_none_keeps_the_architectures():
    assert dropout_rates(load_digits_config(None, ["model_architecture=digit_recognizer_v7"])) == [0.3]
    assert dropout_rates(load_digits_config(None, ["model_architecture=digit_recognizer_v7", "dropout=0.05"])) == [0.05]
