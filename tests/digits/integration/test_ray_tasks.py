"""`digits train` with several models: each one a Ray task on the cluster named by RAY_ADDRESS."""

from __future__ import annotations

import subprocess
import sys

import pytest

from digits.data.synth import SynthSpec, write_dataset

pytestmark = [pytest.mark.ray, pytest.mark.slow]
MODELS = ("digit_recognizer_v6", "digit_recognizer_v3")


def test_two_models_train_as_ray_tasks_and_both_export(ray_head, tmp_path):
    data = write_dataset(tmp_path / "synth", SynthSpec(count=60, seed=2))
    env = dict(ray_head["env"], RAY_ADDRESS=ray_head["address"], TF_CPP_MIN_LOG_LEVEL="2")
    argv = [
        sys.executable,
        "-m",
        "digits",
        "train",
        "--train",
        *MODELS,
        "--epochs",
        "1",
        "--cpus-per-model",
        "1",
        "--set",
        f"data_sources=[{{path: '{data}', weight: 1}}]",
        f"export_dir={tmp_path / 'exported'}",
        "batch_size=16",
    ]
    result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 models as Ray tasks" in result.stderr
    for model in MODELS:
        folder = tmp_path / "exported" / "10cls_GRAY" / model
        assert {"best_model.keras", f"{model}_float.tflite", f"{model}_quantized.tflite", "metrics.json"} <= {
            path.name for path in folder.iterdir()
        }
    table = result.stdout.split("architecture")[-1].splitlines()
    assert sorted(line.split()[0] for line in table[2:]) == sorted(MODELS)
