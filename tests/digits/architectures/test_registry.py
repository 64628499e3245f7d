"""Every registered architecture: builds for 10/100/11 classes in grey and RGB, trains a step, fits INT8 rules."""

from __future__ import annotations

import numpy as np
import pytest

from digits.training.runtime import limit_threads

limit_threads(1)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from digits.architectures import build_model, list_models, model_entry, register_model, resolve_name  # noqa: E402
from experiments.errors import UserError  # noqa: E402

COMBOS = [(classes, channels) for classes in (10, 100, 11) for channels in (1, 3)]
CONV_LAYERS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)


def one_training_step(model: keras.Model, nb_classes: int, channels: int) -> float:
    """One eager SGD step on a random batch; returns how far the weights moved."""
    rng = np.random.default_rng(0)
    images = rng.random((4, 32, 20, channels), dtype=np.float32)
    targets = tf.one_hot(rng.integers(0, nb_classes, 4), nb_classes)
    before = [w.numpy().copy() for w in model.trainable_weights]
    with tf.GradientTape() as tape:
        loss = keras.losses.categorical_crossentropy(targets, model(images, training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)
    keras.optimizers.SGD(0.1).apply_gradients(zip(grads, model.trainable_weights))
    return max(float(np.abs(w.numpy() - b).max()) for w, b in zip(model.trainable_weights, before))


@pytest.mark.parametrize("name", list_models())
def test_builds_for_every_class_count_and_colour_and_trains_a_step(name):
    for nb_classes, channels in COMBOS:
        model = build_model(name, (32, 20, channels), nb_classes)
        assert model.input_shape == (None, 32, 20, channels)
        assert model.output_shape == (None, nb_classes)
        assert one_training_step(model, nb_classes, channels) > 0.0
        probabilities = model(np.zeros((2, 32, 20, channels), np.float32), training=False).numpy()
        assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", list_models())
def test_layer_pattern_is_quantization_friendly(name):
    model = build_model(name, (32, 20, 1), 10)
    for layer in model.layers:
        if isinstance(layer, CONV_LAYERS):
            assert layer.get_config()["activation"] == "linear", f"{layer.name} fuses its activation"
            consumers = [node.operation for node in layer._outbound_nodes]
            assert all(isinstance(c, keras.layers.BatchNormalization) for c in consumers), (
                f"{layer.name} is not followed by BatchNormalization"
            )
        allowed = (
            keras.layers.InputLayer,
            keras.layers.Conv2D,
            keras.layers.DepthwiseConv2D,
            keras.layers.BatchNormalization,
            keras.layers.ReLU,
            keras.layers.MaxPooling2D,
            keras.layers.GlobalAveragePooling2D,
            keras.layers.Flatten,
            keras.layers.Dense,
            keras.layers.Dropout,
            keras.layers.Add,
            keras.layers.Concatenate,
            keras.layers.Softmax,
        )
        assert isinstance(layer, allowed), f"{layer.name}: {type(layer).__name__} is not an INT8-friendly layer"


@pytest.mark.parametrize("name", list_models())
def test_size_fits_its_target(name):
    params = build_model(name, (32, 20, 1), 10).count_params()
    if model_entry(name).embedded:
        assert 10_000 <= params <= 350_000
    else:
        assert params > 350_000


def test_registry_lists_the_original_families():
    expected = {
        "digit_recognizer_v3",
        "digit_recognizer_v4",
        "digit_recognizer_v6",
        "digit_recognizer_v7",
        "digit_recognizer_v12",
        "digit_recognizer_v15",
        "digit_recognizer_v16",
        "digit_recognizer_v17",
        "original_haverland",
        "high_accuracy_validator",
    }
    assert expected <= set(list_models())
    assert list_models().index("digit_recognizer_v3") < list_models().index("digit_recognizer_v12")


def test_alias_resolves_to_the_same_architecture():
    assert resolve_name("cnn32") == "original_haverland"
    assert build_model("cnn32", (32, 20, 1), 10).name == "original_haverland"
    assert "cnn32" not in list_models()


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(UserError, match="unknown architecture 'resnet9000'; known: .*digit_recognizer_v4"):
        resolve_name("resnet9000")


def test_registering_a_name_twice_fails():
    with pytest.raises(ValueError, match="registered twice"):
        register_model("digit_recognizer_v4")(lambda shape, classes: None)
