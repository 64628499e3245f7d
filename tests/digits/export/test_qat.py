"""Quantization-aware training: the tf-keras rebuild is the same network, and QAT exports a working INT8 model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from digits.training.runtime import limit_threads

limit_threads(1)

from digits.architectures import build_model  # noqa: E402
from digits.architectures.registry import family_representatives  # noqa: E402
from digits.config import load_digits_config  # noqa: E402
from digits.data.sklearn_import import import_sklearn_digits  # noqa: E402
from digits.export.qat import qat_epochs, to_tf_keras  # noqa: E402
from digits.export.tflite_eval import load_interpreter  # noqa: E402
from digits.workflow.run import train_and_export  # noqa: E402


@pytest.mark.parametrize("name", family_representatives())
def test_tf_keras_rebuild_computes_the_same_function(name):
    cfg = load_digits_config(None, [f"model_architecture={name}", "nb_classes=11", "input_channels=3"])
    model = build_model(name, (32, 20, 3), 11)
    images = np.random.default_rng(2).random((4, 32, 20, 3), dtype=np.float32)
    legacy = to_tf_keras(model, cfg)
    assert type(legacy).__module__.startswith("tf_keras")
    np.testing.assert_allclose(legacy(images, training=False).numpy(), model(images, training=False).numpy(), atol=1e-5)


@pytest.mark.parametrize("epochs, expected", [(1, 1), (3, 1), (20, 4), (100, 10)])
def test_qat_fine_tunes_a_fifth_of_the_epochs(epochs, expected):
    assert qat_epochs(load_digits_config(None, [f"epochs={epochs}"])) == expected


def test_use_qat_trains_and_exports_int8(tmp_path):
    import_sklearn_digits(tmp_path / "sk")
    cfg = load_digits_config(
        None,
        [
            f"data_sources=[{{path: '{tmp_path / 'sk'}', weight: 1}}]",
            f"export_dir={tmp_path / 'out'}",
            "model_architecture=digit_recognizer_v6",
            "epochs=3",
            "learning_rate=0.003",
            "use_qat=true",
        ],
    )
    result = train_and_export(cfg, verbose=0)
    folder = tmp_path / "out" / "10cls_GRAY" / "digit_recognizer_v6"
    assert result.quantization == "qat" and result.location == str(folder)
    assert json.loads((folder / "metrics.json").read_text())["quantization"] == "qat"
    interpreter = load_interpreter(folder / "digit_recognizer_v6_quantized.tflite")
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8
    assert result.keras_float_accuracy > 0.5
    assert result.int8_accuracy >= result.keras_float_accuracy - 0.05
