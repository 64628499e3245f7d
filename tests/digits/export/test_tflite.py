"""TFLite export: float files match Keras, INT8 files agree with float, evaluation reports size and latency."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from digits.training.runtime import limit_threads

limit_threads(1)

from digits.architectures import build_model  # noqa: E402
from digits.architectures.registry import family_representatives  # noqa: E402
from digits.config import load_digits_config  # noqa: E402
from digits.data.datasets import to_float  # noqa: E402
from digits.data.sklearn_import import import_sklearn_digits  # noqa: E402
from digits.export.tflite import export_float_tflite, export_int8_tflite, float_tflite_bytes  # noqa: E402
from digits.export.tflite_eval import evaluate_tflite, load_interpreter, predict  # noqa: E402
from digits.training.train import train_model  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """digit_recognizer_v4 trained briefly on scikit-learn's digits (train split), validated on its test split."""
    base = tmp_path_factory.mktemp("digits-export")
    import_sklearn_digits(base / "sk")
    cfg = load_digits_config(
        None,
        [
            f"data_sources=[{{path: '{base / 'sk'}', weight: 1}}]",
            f"export_dir={base / 'out'}",
            "model_architecture=digit_recognizer_v4",
            "epochs=4",
            "learning_rate=0.003",
        ],
    )
    return train_model(cfg, verbose=0)


@pytest.mark.parametrize("name", family_representatives())
def test_float_tflite_matches_keras(name):
    model = build_model(name, (32, 20, 1), 10)
    images = np.random.default_rng(1).random((8, 32, 20, 1), dtype=np.float32)
    tflite, _ = predict(float_tflite_bytes(model), images)
    np.testing.assert_allclose(tflite, model(images, training=False).numpy(), atol=1e-4)


def test_int8_predictions_agree_with_float(trained, tmp_path):
    images = to_float(trained.data.validation_set.images)
    labels = trained.data.validation_set.labels
    representative = trained.data.representative_images(200, seed=0)
    float_path = export_float_tflite(trained.model, tmp_path / "m_float.tflite")
    int8_path = export_int8_tflite(trained.model, representative, tmp_path / "m_quantized.tflite")
    float_probs, _ = predict(float_path, images)
    int8_probs, _ = predict(int8_path, images)
    agreement = float(np.mean(float_probs.argmax(1) == int8_probs.argmax(1)))
    assert agreement >= 0.97, f"INT8 agrees with float on {agreement:.3f} of {len(images)} images"
    assert float(np.mean(float_probs.argmax(1) == labels)) > 0.8
    assert int8_path.stat().st_size < float_path.stat().st_size / 2


def test_int8_model_is_full_integer_with_uint8_io(trained, tmp_path):
    path = export_int8_tflite(trained.model, trained.data.representative_images(16), tmp_path / "q.tflite")
    interpreter = load_interpreter(path)
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8
    assert interpreter.get_output_details()[0]["dtype"] == np.uint8
    float_ops = [t for t in interpreter.get_tensor_details() if t["dtype"] == np.float32]
    assert float_ops == []


def test_esp_dl_io_is_int8(trained, tmp_path):
    path = export_int8_tflite(
        trained.model, trained.data.representative_images(16), tmp_path / "e.tflite", io_type="int8"
    )
    interpreter = load_interpreter(path)
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8


def test_evaluation_reports_accuracy_latency_and_size(trained, tmp_path):
    path = export_float_tflite(trained.model, tmp_path / "f.tflite")
    images = to_float(trained.data.validation_set.images[:50])
    labels = trained.data.validation_set.labels[:50]
    result = evaluate_tflite(path, images, labels)
    expected = float(np.mean(trained.model.predict(images, verbose=0).argmax(1) == labels))
    assert result.accuracy == pytest.approx(expected)
    assert result.size_bytes == path.stat().st_size and result.images == 50
    assert result.latency_ms > 0 and result.input_dtype == "float32"


def test_export_leaves_no_temporary_files(trained, tmp_path: Path):
    export_float_tflite(trained.model, tmp_path / "x_float.tflite")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x_float.tflite"]


def test_inventory_reports_params_and_int8_size():
    from digits.export.inventory import describe_model

    info = describe_model("cnn32", nb_classes=11, input_channels=3)
    assert info.name == "original_haverland" and info.embedded
    assert info.params == build_model("original_haverland", (32, 20, 3), 11).count_params()
    assert info.params < info.int8_bytes < 4 * info.params  # about a byte per weight plus the graph


def test_inventory_int8_size_is_the_size_of_the_trained_models_int8_file(trained):
    # An untrained model converts smaller: the converter stores identical (zero/one-initialised) constants once.
    from digits.export.inventory import describe_model
    from digits.export.tflite import int8_tflite_bytes

    shipped = len(int8_tflite_bytes(trained.model, trained.data.representative_images(50, 0)))
    assert describe_model("digit_recognizer_v4").int8_bytes == pytest.approx(shipped, rel=0.01)
