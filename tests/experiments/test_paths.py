"""One way to resolve every path a user gives, in both halves, and what a Ray job may not do with them."""

from __future__ import annotations

import json
import os

import pytest

from digits.config import DigitsConfig
from digits.tuning.config import TuneConfig
from experiments import paths
from experiments.errors import UserError
from lpasrn.config import LpasrnConfig

IN_A_JOB = json.dumps({"runtime_env": {"working_dir": "gcs://_ray_pkg_0123.zip"}, "metadata": {}})


@pytest.fixture
def ray_job(monkeypatch):
    monkeypatch.setenv(paths.RAY_JOB_CONFIG_ENV, IN_A_JOB)


def test_local_paths_become_absolute_against_the_working_folder_and_uris_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert paths.input_path("data/plates") == tmp_path / "data/plates"
    assert paths.output_location("runs", "run.storage_path") == str(tmp_path / "runs")
    assert paths.output_location("s3://bucket/runs", "run.storage_path") == "s3://bucket/runs"
    assert paths.input_location("hf://owner/repo/file.pt") == "hf://owner/repo/file.pt"


def test_a_relative_output_in_a_ray_job_is_refused_with_what_to_pass(ray_job):
    with pytest.raises(UserError, match=r"run.storage_path=runs: a relative path in a Ray job .*\"\$PWD/runs\""):
        paths.output_location("runs", "run.storage_path")
    assert paths.output_location("/shared/runs", "run.storage_path") == "/shared/runs"
    assert paths.output_location("gs://bucket/runs", "run.storage_path") == "gs://bucket/runs"


def test_outside_a_job_or_in_a_job_without_a_working_dir_nothing_is_refused(monkeypatch):
    assert not paths.in_ray_job_working_dir() and paths.missing_input_hint() == ""
    monkeypatch.setenv(paths.RAY_JOB_CONFIG_ENV, json.dumps({"runtime_env": {}}))
    assert not paths.in_ray_job_working_dir()


def test_a_missing_dataset_in_a_job_says_why_it_may_not_have_been_uploaded(ray_job, tmp_path):
    from lpasrn.data.plates import scan_tracks

    with pytest.raises(UserError, match="dataset folder not found .*uploaded copy of --working-dir.*runs/"):
        scan_tracks(tmp_path / "nowhere")


def test_both_halves_resolve_their_paths_the_same_way(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lpasrn = LpasrnConfig.model_validate(
        {"data": {"root": "plates", "split_file": "plates/split.txt"}, "run": {"storage_path": "runs"}}
    ).with_absolute_paths()
    assert lpasrn.data.root == tmp_path / "plates" and lpasrn.run.storage_path == str(tmp_path / "runs")
    digits = DigitsConfig.model_validate(
        {"data_sources": [{"path": "sk"}], "export_dir": "exported"}
    ).with_absolute_paths()
    assert digits.data_sources[0].path == tmp_path / "sk" and digits.export_dir == tmp_path / "exported"
    tune = TuneConfig.model_validate(
        {"storage_path": "runs/tune", "base": {"data_sources": [{"path": "sk"}]}}
    ).with_absolute_paths()
    assert tune.storage_path == tmp_path / "runs/tune" and tune.base.data_sources[0].path == tmp_path / "sk"


def test_tune_in_a_job_keeps_relative_data_but_refuses_relative_storage(ray_job, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tune = TuneConfig.model_validate(
        {"storage_path": str(tmp_path / "runs"), "base": {"data_sources": [{"path": "sk"}]}}
    ).with_absolute_paths()
    assert tune.base.data_sources[0].path == tmp_path / "sk"  # uploaded with the working dir, on purpose
    with pytest.raises(UserError, match="storage_path=runs/tune"):
        TuneConfig.model_validate({"storage_path": "runs/tune"}).with_absolute_paths()


def test_ray_that_cannot_start_is_one_line_with_what_to_try(monkeypatch):
    import ray

    from experiments import ray_connect

    def fail(**_):
        raise TimeoutError("The node with node id: abc timed out during startup.\nCheck logs")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fail)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(UserError) as caught:
        ray_connect.connect()
    message = str(caught.value)
    assert "\n" not in message and message.startswith("starting a local Ray failed (TimeoutError: The node")
    assert "--local" in message
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.9:6379")
    monkeypatch.setattr(ray, "init", lambda **_: (_ for _ in ()).throw(ConnectionError("no token found")))
    with pytest.raises(UserError, match="connecting to Ray at 10.0.0.9:6379 failed .*RAY_AUTH_MODE=token"):
        ray_connect.connect()


def test_a_private_local_ray_turns_off_what_it_has_no_use_for_but_keeps_the_users_choice(monkeypatch):
    import ray

    from experiments import ray_connect

    started = {}
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: started.update(kwargs))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", raising=False)  # restored after the test
    monkeypatch.setenv("RAY_TRAIN_METRICS_ENABLED", "1")  # the user's
    assert ray_connect.connect() == "local instance"
    assert os.environ["RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"] == "0"
    assert os.environ["RAY_TRAIN_METRICS_ENABLED"] == "1"
    assert started["include_dashboard"] is False
