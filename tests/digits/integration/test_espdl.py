"""ESP-DL export (`esp_dl_quantize`): a trained digit recognizer becomes a `.espdl` file per target chip whose
int8 graph (simulated by ESP-PPQ on the CPU) reads as well as the float model; without the `espdl` extra the
user gets one line saying what to install.

TensorFlow is imported by the tests, not by this module: importing it before torchvision (which the lpasrn test
modules collected after this one import) crashes the process in triton's native library.
"""

from __future__ import annotations

import json
import struct
import sys

import numpy as np
import pytest

from digits.architectures import build_model
from digits.cli import run as digits_run
from digits.config import load_digits_config
from digits.data.sklearn_import import import_sklearn_digits
from digits.export import espdl
from digits.export.espdl import export_espdl
from digits.training.runtime import limit_threads
from digits.workflow.preflight import check_run
from experiments.errors import UserError

MODEL = "digit_recognizer_v4"
INSTALL_HINT = "pip install -e '.[espdl]'"
HEADER = struct.Struct("<4sII4x")  # magic, encrypted flag, payload length; then the flatbuffer


@pytest.fixture(scope="module")
def sklearn_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits-espdl") / "sk"
    import_sklearn_digits(root)
    return root


def espdl_config(root, out, *extra: str):
    return load_digits_config(
        None,
        [
            f"data_sources=[{{path: '{root}', weight: 1}}]",
            f"export_dir={out}",
            f"model_architecture={MODEL}",
            "esp_dl_quantize=true",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def exported(sklearn_root, tmp_path_factory):
    """The workflow with esp_dl_quantize for esp32s3: v4 trained 3 epochs on scikit-learn's digits."""
    pytest.importorskip("esp_ppq")
    pytest.importorskip("tf2onnx")
    limit_threads(1)
    from digits.workflow.run import train_and_export

    cfg = espdl_config(
        sklearn_root, tmp_path_factory.mktemp("out"), "epochs=3", "learning_rate=0.003", "esp_dl_target=esp32s3"
    )
    run = train_and_export(cfg, verbose=0)
    return cfg, run, cfg.export_dir / cfg.export_group / MODEL


def assert_espdl_file(path):
    content = path.read_bytes()
    magic, encrypted, length = HEADER.unpack_from(content)
    assert (magic, encrypted) == (b"EDL2", 0)
    assert length == len(content) - HEADER.size > 10_000  # the int8 weights of an 80k-parameter model


def test_workflow_writes_the_espdl_and_its_metrics(exported):
    cfg, run, folder = exported
    name = f"{MODEL}_esp32s3.espdl"
    assert run.files["espdl"] == name and run.location == str(folder)
    assert_espdl_file(folder / name)
    assert {p.name for p in folder.iterdir()} == {  # no ONNX, ESP-PPQ side files or temporary folder left
        "best_model.keras",
        f"{MODEL}_float.tflite",
        f"{MODEL}_quantized.tflite",
        name,
        "training_history.png",
        "metrics.json",
        "config.resolved.yaml",
    }
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved["files"]["espdl"] == name and saved["espdl_target"] == "esp32s3"
    assert saved["espdl_size_bytes"] == (folder / name).stat().st_size
    assert saved["int8_io_type"] == "int8"


def test_quantized_graph_reads_like_the_float_model(exported):
    _, run, _ = exported
    assert run.keras_float_accuracy > 0.85, "the model must be trained enough for the comparison to matter"
    assert run.espdl.accuracy == pytest.approx(run.keras_float_accuracy, abs=0.03)


def test_esp32p4_export_of_the_same_model(exported, tmp_path):
    import keras

    from digits.data.datasets import build_datasets, to_float

    cfg, run, folder = exported
    model = keras.models.load_model(folder / "best_model.keras")
    data = build_datasets(cfg)
    result = export_espdl(
        model,
        data.representative_images(100, cfg.seed),
        tmp_path,
        MODEL,
        "esp32p4",
        to_float(data.validation_set.images),
        data.validation_set.labels,
    )
    assert result.path == tmp_path / f"{MODEL}_esp32p4.espdl"
    assert [p.name for p in tmp_path.iterdir()] == [result.path.name]
    assert_espdl_file(result.path)
    assert result.images == len(data.validation_set.labels)
    assert result.accuracy == pytest.approx(run.keras_float_accuracy, abs=0.03)


@pytest.fixture(params=["esp_ppq", "tf2onnx"])
def missing_package(request, monkeypatch):
    """Make `import <package>` fail as if it were not installed (None in sys.modules blocks the import)."""
    for name in [request.param, *(key for key in sys.modules if key.startswith(request.param + "."))]:
        monkeypatch.setitem(sys.modules, name, None)
    return request.param


def assert_one_line_install_hint(message: str, package: str):
    assert len(message.strip().splitlines()) == 1
    assert INSTALL_HINT in message and package in message


def test_missing_package_stops_the_run_before_training(missing_package, sklearn_root, tmp_path, capsys):
    with pytest.raises(UserError) as raised:
        check_run(espdl_config(sklearn_root, tmp_path))
    assert_one_line_install_hint(str(raised.value), missing_package)
    assert (
        digits_run(
            [
                "train",
                "--set",
                f"data_sources=[{{path: '{sklearn_root}', weight: 1}}]",
                f"export_dir={tmp_path}",
                "esp_dl_quantize=true",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert_one_line_install_hint(err, missing_package)
    assert err.startswith("error: esp_dl_quantize needs")
    assert not any(tmp_path.iterdir())


def test_missing_package_in_the_export_itself(missing_package, tmp_path):
    model = build_model(MODEL, (32, 20, 1), 10)
    with pytest.raises(UserError) as raised:
        export_espdl(model, np.zeros((2, 32, 20, 1), np.float32), tmp_path, MODEL, "esp32s3")
    assert_one_line_install_hint(str(raised.value), missing_package)
    assert not any(tmp_path.iterdir())


def test_failed_quantization_keeps_the_previous_file_and_leaves_nothing_else(tmp_path, monkeypatch):
    tf2onnx = pytest.importorskip("tf2onnx")
    esp_api = pytest.importorskip("esp_ppq.api")

    def quantize_and_fail(onnx_import_file, espdl_export_file, **kwargs):
        with open(espdl_export_file, "wb") as fh:
            fh.write(b"EDL2 half-written")
        raise RuntimeError("calibration failed")

    monkeypatch.setattr(
        espdl, "_require_packages", lambda: (tf2onnx, quantize_and_fail, esp_api.QuantizationSettingFactory)
    )
    previous = tmp_path / f"{MODEL}_esp32s3.espdl"
    previous.write_bytes(b"previous export")
    with pytest.raises(RuntimeError, match="calibration failed"):
        export_espdl(build_model(MODEL, (32, 20, 1), 10), np.zeros((2, 32, 20, 1), np.float32), tmp_path, MODEL)
    assert [p.name for p in tmp_path.iterdir()] == [previous.name]
    assert previous.read_bytes() == b"previous export"
