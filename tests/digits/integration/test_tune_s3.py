"""`digits tune --storage-path s3://...` against the local S3 server (moto): Tune's state, the Optuna journal and
every output in the bucket, Ctrl-C then --resume from the bucket (the interrupted trial continues from its
checkpoint), the study opened from the bucket and from a downloaded journal, and no scratch folder left behind.
Trials run on the shared local Ray head, whose nodes have the S3 settings in their environment."""

from __future__ import annotations

import io
import json
import subprocess

import pandas as pd
import yaml

from digits.tuning.trainable import read_trainings
from experiments import storage
from tests.conftest import REPO_ROOT
from tests.digits.integration.test_tune import (
    TIMEOUT_S,
    cli_env,
    digits_cmd,
    interrupt_when,
    small_digits,
    tune_file,
    tune_holds_a_checkpoint,
)

EPOCHS = 4  # checkpoints after epochs 1-3: the second trial is interrupted after its second, mid-way


def read_table(location: str) -> pd.DataFrame:
    """The results table from the bucket, read as a user reads a downloaded file (pandas needs no s3fs)."""
    table = storage.read_bytes(storage.join(location, "detailed_tuning_results.csv"))
    return pd.read_csv(io.BytesIO(table), dtype={"trial_id": str})  # ids such as "45658336" stay strings


def test_tune_in_a_bucket_interrupted_and_resumed(ray_head, s3_bucket, tmp_path):
    data = small_digits(tmp_path / "sk", train=200, test=60)
    config = tune_file(
        tmp_path / "tune.yaml",
        data,
        tmp_path / "unused",
        budget_epochs=2 * EPOCHS,
        num_samples=None,
        max_concurrent=1,
        epochs_per_trial=EPOCHS,
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
    location = f"{s3_bucket}/tune/t"
    command = digits_cmd("tune", "--config", str(config), "--storage-path", f"{s3_bucket}/tune")
    env = cli_env(ray_head)

    def finished() -> set[str]:
        cache = storage.join(location, "unique_results.json")
        if not storage.exists(cache):
            return set()
        return {entry["trial_id"] for entry in json.loads(storage.read_bytes(cache))["results"].values()}

    def second_trial_checkpointed() -> bool:
        """A trial has finished and Tune holds a checkpoint of another (Tune's trial folders hold the trial id)."""
        done = finished()
        paths = [name.split("/") for name in storage.list_files(location) if "/checkpoint_" in name]
        checkpoints = {parts[1] for parts in paths if not any(trial in parts[0] for trial in done)}
        return bool(done) and tune_holds_a_checkpoint(checkpoints)

    returncode, err = interrupt_when(command, env, second_trial_checkpointed, poll_s=0.5)
    assert returncode == 130, err[-3000:]
    finished_before = finished()
    assert len(finished_before) == 1
    partial = read_table(location)  # uploaded as the trial ended
    assert list(partial["trial_id"]) == list(finished_before) and list(partial["outcome"]) == ["finished"]

    resumed = subprocess.run(
        [*command, "--resume"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"outputs in {location}" in resumed.stdout
    runs = read_trainings(location)
    assert len({entry["key"] for entry in runs}) == 2
    continued = [entry for entry in runs if entry["trial_id"] not in finished_before]
    assert len(continued) == 2 and continued[0]["resumed_from_epoch"] == 0 and continued[1]["resumed_from_epoch"] >= 1
    table = read_table(location)
    assert len(table) == 2 and (table["outcome"] == "finished").all()
    summary = json.loads(storage.read_bytes(storage.join(location, "best_hyperparameters.json")))
    assert summary["trial_epochs_spent"] == 2 * EPOCHS == summary["budget_epochs"]
    best = yaml.safe_load(storage.read_bytes(storage.join(location, "best_config.yaml")))
    assert best["export_dir"] == f"{location}/best_model"
    assert yaml.safe_load(storage.read_bytes(storage.join(location, "best_hyperparameters.yaml")))["optimizer"] in (
        "adam",
        "sgd",
    )

    from digits.tuning.search import load_study

    scores = set(table["int8_accuracy"])
    assert {t.values[0] for t in load_study(location).trials if t.values} >= scores
    downloaded = tmp_path / "download" / "t"  # what a user does: copy the journal, open it with Optuna
    downloaded.mkdir(parents=True)
    (downloaded / "optuna_study.log").write_bytes(storage.read_bytes(storage.join(location, "optuna_study.log")))
    assert {t.values[0] for t in load_study(downloaded).trials if t.values} >= scores
    assert not storage.scratch_folder(location).exists(), "the driver's scratch folder was left behind"


def test_resume_without_an_experiment_in_the_bucket_is_one_line(ray_head, s3_bucket, tmp_path):
    config = tune_file(tmp_path / "tune.yaml", small_digits(tmp_path / "sk", train=50, test=20), tmp_path / "unused")
    done = subprocess.run(
        digits_cmd("tune", "--config", str(config), "--storage-path", f"{s3_bucket}/tune", "--resume"),
        env=cli_env(ray_head),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: {s3_bucket}/tune/t: no Tune experiment to resume (start it without --resume)"
    )
