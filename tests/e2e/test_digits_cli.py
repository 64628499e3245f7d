"""`digits train` / `digits list-models` as a user runs them: files written, bad input -> exit 2 and one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from digits.cli import run as digits_run
from digits.data.sklearn_import import import_sklearn_digits
from tests.conftest import REPO_ROOT


def run_digits(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m digits ...` in a fresh process limited to one TensorFlow thread (the machine is shared)."""
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO_ROOT),
        TF_CPP_MIN_LOG_LEVEL="3",
        TF_NUM_INTRAOP_THREADS="1",
        TF_NUM_INTEROP_THREADS="1",
    )
    return subprocess.run(
        [sys.executable, "-m", "digits", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def sklearn_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("digits-cli") / "sk"
    import_sklearn_digits(root)
    return root


def sources(root: Path) -> str:
    return f"data_sources=[{{path: '{root}', weight: 1}}]"


def test_train_writes_every_output(sklearn_root, tmp_path):
    out = tmp_path / "exported"
    result = run_digits(
        "train",
        "--threads",
        "1",
        "--train",
        "digit_recognizer_v4",
        "--set",
        "epochs=2",
        sources(sklearn_root),
        f"export_dir={out}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    folder = out / "10cls_GRAY" / "digit_recognizer_v4"
    expected = {
        "best_model.keras",
        "digit_recognizer_v4_float.tflite",
        "digit_recognizer_v4_quantized.tflite",
        "training_history.png",
        "metrics.json",
        "config.resolved.yaml",
    }
    assert {p.name for p in folder.iterdir()} == expected  # checkpoints/ cleaned up, no temporary files
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["params"] > 10_000
    for key in ("keras_float_accuracy", "float_tflite_accuracy", "int8_tflite_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["float_tflite_accuracy"] == pytest.approx(metrics["keras_float_accuracy"], abs=0.01)
    assert metrics["int8_tflite_size_bytes"] == (folder / "digit_recognizer_v4_quantized.tflite").stat().st_size
    assert metrics["int8_io_type"] == "uint8"
    assert (folder / "training_history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "model_architecture: digit_recognizer_v4" in (folder / "config.resolved.yaml").read_text()
    assert "digit_recognizer_v4: keras" in result.stdout


def test_missing_data_folder_is_one_line_in_a_fresh_process(tmp_path):
    result = run_digits("train", "--set", f"data_sources=[{{path: '{tmp_path / 'nope'}', weight: 1}}]")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nope'}: data source folder not found (data_sources.0.path)"
    ]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--set", "use_qat=true", "quantize_model=false"], "use_qat needs quantize_model"),
        (["train", "--train", "resnet9000"], "unknown architecture 'resnet9000'; known: digit_recognizer_v3"),
        (["train", "--set", "esp_dl_quantize=true", "quantize_model=false"], "esp_dl_quantize needs quantize_model"),
        (["train", "--set", "data_sources=[]"], "data_sources is empty"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, capsys):
    assert digits_run(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err


def test_unknown_model_is_refused_before_training_any(sklearn_root, tmp_path, capsys):
    argv = ["train", "--train", "digit_recognizer_v6", "nope", "--set", sources(sklearn_root), f"export_dir={tmp_path}"]
    assert digits_run(argv) == 2
    assert "unknown architecture 'nope'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_train_options_are_exclusive(capsys):
    with pytest.raises(SystemExit) as info:
        digits_run(["train", "--train_all", "--test_all_models"])
    assert info.value.code == 2


def test_help_mentions_sequential_training(capsys):
    with pytest.raises(SystemExit):
        digits_run(["train", "--help"])
    assert "one after another" in capsys.readouterr().out.replace("\n", " ")


def test_results_table_has_a_row_per_model():
    from digits.cli.app import _results_table
    from digits.export.tflite_eval import TFLiteEvaluation
    from digits.workflow.run import RunResult

    def result(model: str, params: int, float_accuracy: float, int8: TFLiteEvaluation | None) -> RunResult:
        return RunResult(
            model,
            model,
            10,
            "GRAY",
            params,
            1,
            1,
            360,
            float_accuracy,
            TFLiteEvaluation(float_accuracy, 1.0, 400_000, "float32", 360),
            int8,
            "ptq" if int8 else "none",
            None,
            None,
            {},
            {},
        )

    rows = [
        result("digit_recognizer_v4", 81642, 0.95, TFLiteEvaluation(0.949, 0.5, 92160, "uint8", 360)),
        result("high_accuracy_validator", 732586, 0.97, None),
    ]
    lines = _results_table(rows).splitlines()
    assert lines[0].split() == ["architecture", "params", "float", "acc", "INT8", "acc", "INT8", "KB"]
    assert lines[2].split() == ["digit_recognizer_v4", "81642", "0.9500", "0.9490", "90.0"]
    assert lines[3].split() == ["high_accuracy_validator", "732586", "0.9700", "-", "-"]


def test_no_cleanup_keeps_checkpoints_and_quantize_off_skips_int8(sklearn_root, tmp_path, capsys):
    argv = [
        "train",
        "--train",
        "digit_recognizer_v6",
        "--epochs",
        "1",
        "--no_cleanup",
        "--set",
        sources(sklearn_root),
        f"export_dir={tmp_path}",
        "quantize_model=false",
    ]
    assert digits_run(argv) == 0
    folder = tmp_path / "10cls_GRAY" / "digit_recognizer_v6"
    assert [p.name for p in (folder / "checkpoints").iterdir()] == ["epoch_001.keras"]
    assert not (folder / "digit_recognizer_v6_quantized.tflite").exists()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["quantization"] == "none" and metrics["int8_tflite_accuracy"] is None
    assert "int8 -" in capsys.readouterr().out


def test_train_exports_to_a_bucket(sklearn_root, s3_bucket, capsys):
    """export_dir=s3://...: every file of the local layout lands in the bucket (local S3 server), read back as plain
    files, and no scratch folder is left behind."""
    import glob
    import hashlib
    import tempfile

    from experiments import storage

    export_dir = f"{s3_bucket}/models"
    argv = [
        "train",
        "--threads",
        "1",
        "--train",
        "digit_recognizer_v6",
        "--epochs",
        "1",
        "--set",
        sources(sklearn_root),
        f"export_dir={export_dir}",
    ]
    assert digits_run(argv) == 0
    folder = storage.join(export_dir, "10cls_GRAY", "digit_recognizer_v6")
    assert f"-> {folder}" in capsys.readouterr().out
    assert set(storage.list_files(folder)) == {
        "best_model.keras",
        "digit_recognizer_v6_float.tflite",
        "digit_recognizer_v6_quantized.tflite",
        "training_history.png",
        "metrics.json",
        "config.resolved.yaml",
    }
    metrics = json.loads(storage.read_bytes(storage.join(folder, "metrics.json")))
    int8 = storage.read_bytes(storage.join(folder, "digit_recognizer_v6_quantized.tflite"))
    assert metrics["int8_tflite_size_bytes"] == len(int8) and metrics["epochs_run"] == 1
    assert f"export_dir: {export_dir}" in storage.read_bytes(storage.join(folder, "config.resolved.yaml")).decode()
    tag = hashlib.sha1(folder.encode()).hexdigest()[:10]
    assert not glob.glob(f"{tempfile.gettempdir()}/glyphray-*{tag}*")
