"""`digits tune` on the shared local Ray: tiny real data, tiny spaces, every output, one line per trial, no
configuration trained twice, the budget kept, Ctrl-C (finished trials already in the table) then --resume
(the interrupted trial continues from its checkpoint), and `experiments analyze` on the result."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from digits.data.sklearn_import import import_sklearn_digits
from digits.tuning.trainable import read_trainings
from tests.conftest import REPO_ROOT, submit_job

TIMEOUT_S = 400


def small_digits(root: Path, train: int = 300, test: int = 100) -> Path:
    """A few hundred scikit-learn digits: labels.txt cut down (the PNGs left unused are ignored)."""
    import_sklearn_digits(root)
    for split, keep in (("train", train), ("test", test)):
        labels = root / split / "labels.txt"
        labels.write_text("\n".join(labels.read_text().splitlines()[:keep]) + "\n")
    return root


def tune_file(path: Path, data: Path, storage: Path, **settings) -> Path:
    """A tune YAML with one architecture and one-value knobs except `optimizers` and `focal_gamma`; no rungs
    (grace_period = epochs_per_trial), so every trial finishes and the tests do not depend on who is cut."""
    spec = {
        "name": "t",
        "storage_path": str(storage),
        "num_samples": 6,
        "max_concurrent": 2,
        "cpus_per_trial": 1,
        "epochs_per_trial": 2,
        "eval_images": 50,
        "space": {
            "architectures": ["digit_recognizer_v6"],
            "optimizers": ["adam", "sgd"],
            "learning_rate": [0.003],
            "batch_size": [32],
            "focal_gamma": [0.0, 2.0],
            "focal_alpha": [0.25],
            "label_smoothing": [0.0],
            "dropout": [0.2],
            "quantization": ["ptq"],
        },
        "base": {"epochs": 1, "data_sources": [{"path": str(data), "weight": 1}], "augmentation": {"enabled": False}},
    }
    spec.update(settings)
    spec.setdefault("grace_period", spec["epochs_per_trial"])
    path.write_text(yaml.safe_dump(spec))
    return path


def digits_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "digits", *args]


def cli_env(ray_head) -> dict:
    return dict(ray_head["env"], RAY_ADDRESS=ray_head["address"], TF_CPP_MIN_LOG_LEVEL="2")


def tune_holds_a_checkpoint(checkpoint_folders: Iterable[str]) -> bool:
    """From the names of a trial's checkpoint folders: whether Tune's state holds one of its checkpoints.

    A trial trains on only once Tune has taken in the checkpoint it reported (results are synchronous and the next
    step is asked for after the save), so its second checkpoint (`checkpoint_000001`; Tune keeps the last one only)
    proves the first is held. The first folder's first file could beat the report to the driver, and a Ctrl-C then
    would resume that trial from scratch."""
    return any(int(name.removeprefix("checkpoint_")) >= 1 for name in checkpoint_folders)


def interrupt_when(command: list[str], env: dict, ready, poll_s: float = 0.2) -> tuple[int, str]:
    """Start `command`; Ctrl-C it once `ready()` (or once it has ended, or after TIMEOUT_S); its exit code, stderr."""
    process = subprocess.Popen(
        command, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None and not ready():
        time.sleep(poll_s)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=180)
    return process.returncode, err


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return small_digits(tmp_path_factory.mktemp("tune-data") / "sk")


@pytest.fixture(scope="module")
def tuned(ray_head, data, tmp_path_factory):
    """6 proposed trials, 2 at a time, over a space of 4 distinct configurations; accuracy and size objectives."""
    work = tmp_path_factory.mktemp("tune-run")
    config = tune_file(work / "tune.yaml", data, work / "runs", objective="multi")
    done = subprocess.run(
        digits_cmd("tune", "--config", str(config)),
        env=cli_env(ray_head),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return work / "runs" / "t", done


def test_tune_writes_every_output(tuned):
    exp_dir, done = tuned
    for name in (
        "best_hyperparameters.json",
        "best_hyperparameters.yaml",
        "best_config.yaml",
        "detailed_tuning_results.csv",
        "detailed_tuning_results.parquet",
    ):
        assert (exp_dir / name).is_file(), name
    best_dir = exp_dir / "best_model" / "10cls_GRAY" / "digit_recognizer_v6"
    for name in ("best_model.keras", "digit_recognizer_v6_quantized.tflite", "metrics.json"):
        assert (best_dir / name).is_file(), name
    assert "best " in done.stdout and "int8_accuracy" in done.stdout


def test_the_terminal_shows_one_line_per_trial_not_tunes_status_table(tuned):
    exp_dir, done = tuned
    lines = [line for line in done.stdout.splitlines() if line.startswith("[")]
    summary = json.loads((exp_dir / "best_hyperparameters.json").read_text())
    assert len(lines) == summary["trials_trained"]
    assert all(" finished: INT8 " in line for line in lines)
    assert "Trial status" not in done.stdout and "Current time" not in done.stdout


def test_the_study_opens_in_optuna(tuned):
    from digits.tuning.search import load_study

    exp_dir, _ = tuned
    study = load_study(exp_dir)  # objective multi: (INT8 accuracy, INT8 size) per trial, repeats included
    values = {tuple(t.values) for t in study.trials if t.values}
    table = pd.read_csv(exp_dir / "detailed_tuning_results.csv", dtype={"trial_id": str})
    assert set(zip(table["int8_accuracy"], table["int8_size_bytes"])) <= values
    assert len(study.best_trials) >= 1


def test_results_rank_trials_by_int8_accuracy(tuned):
    exp_dir, _ = tuned
    table = pd.read_parquet(exp_dir / "detailed_tuning_results.parquet")
    assert list(table["int8_accuracy"]) == sorted(table["int8_accuracy"], reverse=True)
    assert (table["int8_size_bytes"] > 0).all() and table["pareto"].any()
    best = json.loads((exp_dir / "best_hyperparameters.json").read_text())
    assert best["best"]["trial_id"] == table["trial_id"][0]
    assert best["metric"] == ["int8_accuracy", "int8_size_bytes"] and best["mode"] == ["max", "min"]
    assert {t["trial_id"] for t in best["pareto_front"]} == set(table[table["pareto"]]["trial_id"])
    assert isinstance(best["best"]["hyperparameters"]["batch_size"], int) and best["best"]["epoch"] == 2
    snippet = yaml.safe_load((exp_dir / "best_hyperparameters.yaml").read_text())
    assert snippet["model_architecture"] == "digit_recognizer_v6" and snippet["optimizer"] in ("adam", "sgd")


def test_no_configuration_is_trained_twice(tuned):
    exp_dir, _ = tuned
    keys = [entry["key"] for entry in read_trainings(exp_dir)]
    assert len(keys) == len(set(keys)) == 4  # 6 proposals over 4 distinct configurations
    summary = json.loads((exp_dir / "best_hyperparameters.json").read_text())
    assert summary["trials_trained"] == 4 and summary["repeats_answered_from_cache"] >= 2


def test_analyze_writes_plots_and_table(tuned, tmp_path):
    exp_dir, _ = tuned
    done = subprocess.run(
        [sys.executable, "-m", "experiments", "analyze", str(exp_dir), "--out", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert {p.name for p in tmp_path.glob("*.png")} >= {
        "learning_curves.png",
        "pareto_accuracy_vs_size.png",
        "parallel_coordinates.png",
    }
    assert done.stdout.splitlines()[0].split()[:2] == ["rank", "trial_id"]


def test_ctrl_c_keeps_finished_trials_and_resume_continues_the_interrupted_one(ray_head, data, tmp_path):
    """A budget of two 4-epoch trials; Ctrl-C once the first has finished and Tune holds a checkpoint of the
    second."""
    config = tune_file(
        tmp_path / "tune.yaml",
        data,
        tmp_path / "runs",
        budget_epochs=8,
        num_samples=None,
        max_concurrent=1,
        epochs_per_trial=4,
        train_best=False,
        space={
            "architectures": ["digit_recognizer_v6"],
            "optimizers": ["adam", "sgd"],
            "learning_rate": [0.003],
            "batch_size": [32],
            "focal_gamma": [0.0],
            "label_smoothing": [0.0],
            "dropout": [0.2],
            "quantization": ["ptq"],
        },
    )
    exp_dir = tmp_path / "runs" / "t"
    cache = exp_dir / "unique_results.json"

    def finished() -> set[str]:
        return {e["trial_id"] for e in json.loads(cache.read_text())["results"].values()} if cache.exists() else set()

    def second_trial_checkpointed() -> bool:
        done = finished()
        return bool(done) and any(
            folder.name.split("_")[2] not in done
            and tune_holds_a_checkpoint(checkpoint.name for checkpoint in folder.glob("checkpoint_*"))
            for folder in exp_dir.glob("run_trial_*")
        )

    returncode, err = interrupt_when(
        digits_cmd("tune", "--config", str(config)), cli_env(ray_head), second_trial_checkpointed
    )
    assert returncode == 130, err[-3000:]
    finished_before = finished()
    assert len(finished_before) == 1
    partial = pd.read_csv(exp_dir / "detailed_tuning_results.csv", dtype={"trial_id": str})  # after the first trial
    assert list(partial["trial_id"]) == list(finished_before) and list(partial["outcome"]) == ["finished"]

    resumed = subprocess.run(
        digits_cmd("tune", "--config", str(config), "--resume"),
        env=cli_env(ray_head),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    runs = read_trainings(exp_dir)
    assert len({entry["key"] for entry in runs}) == 2
    for trial_id in finished_before:
        assert [entry["trial_id"] for entry in runs].count(trial_id) == 1
    continued = [entry for entry in runs if entry["trial_id"] not in finished_before]
    assert len(continued) == 2 and continued[0]["resumed_from_epoch"] == 0 and continued[1]["resumed_from_epoch"] >= 1
    table = pd.read_csv(exp_dir / "detailed_tuning_results.csv", dtype={"trial_id": str})
    assert len(table) == 2 and table["trial_id"].is_unique and (table["outcome"] == "finished").all()
    summary = json.loads((exp_dir / "best_hyperparameters.json").read_text())
    assert summary["trial_epochs_spent"] == 8 == summary["budget_epochs"]


def test_resume_without_an_experiment_is_a_user_error(ray_head, data, tmp_path):
    config = tune_file(tmp_path / "tune.yaml", data, tmp_path / "runs")
    done = subprocess.run(
        digits_cmd("tune", "--config", str(config), "--resume"),
        env=cli_env(ray_head),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "no Tune experiment to resume" in done.stderr


def test_ray_job_submit_tunes_with_data_uploaded_in_the_working_dir(ray_head, data, tmp_path):
    """The README's job recipe: relative data sources inside --working-dir travel with the job; the experiment
    goes to an absolute storage path, where it outlives the job's temporary copy of the working dir."""
    import shutil

    job_dir = tmp_path / "job"
    shutil.copytree(data, job_dir / "sk")
    tune_file(
        job_dir / "tune.yaml",
        Path("sk"),
        tmp_path / "runs",
        num_samples=1,
        max_concurrent=1,
        epochs_per_trial=1,
        train_best=False,
        space={
            "architectures": ["digit_recognizer_v6"],
            "optimizers": ["adam"],
            "learning_rate": [0.003],
            "batch_size": [32],
            "focal_gamma": [0.0],
            "label_smoothing": [0.0],
            "dropout": [0.2],
            "quantization": ["ptq"],
        },
    )
    done = submit_job(ray_head, "digits", "tune", "--config", "tune.yaml", working_dir=job_dir, timeout=TIMEOUT_S)
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "succeeded" in output, output[-3000:]
    table = pd.read_csv(tmp_path / "runs" / "t" / "detailed_tuning_results.csv", dtype={"trial_id": str})
    assert len(table) == 1 and table["int8_accuracy"].notna().all()
