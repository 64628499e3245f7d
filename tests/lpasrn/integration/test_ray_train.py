"""lpasrn on Ray: DDP over two workers with a failure, and `ray job submit` against `ray start --head`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lpasrn.training.fault_injection import FAIL_AT_EPOCH_ENV, FAIL_MARKER_ENV
from tests.conftest import REPO_ROOT, submit_job, tiny_overrides

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_two_ddp_workers_survive_a_failure_and_resume_after_the_last_checkpoint(ray_head, synth_plates, tmp_path):
    env = dict(
        ray_head["env"],
        RAY_ADDRESS=ray_head["address"],
        **{FAIL_AT_EPOCH_ENV: "2", FAIL_MARKER_ENV: str(tmp_path / "failed")},
    )
    relative = Path(os.path.relpath(synth_plates, REPO_ROOT))  # workers start elsewhere: the CLI resolves it
    overrides = tiny_overrides(relative, tmp_path, "ddp", epochs=(3, 0, 0, 0, 0)) + [
        "run.max_failures=1",
        "train.progress_every_s=0.01",
    ]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lpasrn",
            "train",
            "--config",
            "lp_asrn_tiny",
            "--stage",
            "0",
            "--num-workers",
            "2",
            "--set",
            *overrides,
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "failed").read_text().startswith("failed at epoch 2")
    summary = json.loads((tmp_path / "ddp/stage0-pretrain/metrics.json").read_text())
    assert summary["finished"] and summary["world_size"] == 2
    assert [(row["epoch"], row["attempt"]) for row in summary["history"]] == [(1, 0), (2, 1), (3, 1)]
    assert (tmp_path / "ddp-stage0").is_dir(), "the stage is the Ray Train run <name>-stage0"
    assert "stage0-pretrain epoch 1: step 1/" in result.stdout + result.stderr, "workers show progress (no terminal)"


def test_ray_job_submit_runs_the_cli_on_the_cluster(ray_head, synth_plates, tmp_path):
    overrides = tiny_overrides(synth_plates, tmp_path, "job", epochs=(1, 0, 0, 0, 0))
    result = submit_job(ray_head, "lpasrn", "train", "--config", "lp_asrn_tiny", "--stage", "0", "--set", *overrides)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "succeeded" in output and "inference bundle" in output
    assert (tmp_path / "job/lp_asrn_bundle.pt").is_file()


def test_a_relative_storage_path_in_a_job_is_refused_before_anything_is_written(ray_head, synth_plates):
    """The job runs in a temporary copy of --working-dir: relative outputs would vanish with the cluster."""
    result = submit_job(
        ray_head,
        "lpasrn",
        "train",
        "--config",
        "lp_asrn_tiny",
        "--stage",
        "0",
        "--set",
        f"data.root={synth_plates}",
        "run.storage_path=runs/from-a-job",
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "failed" in output
    assert "run.storage_path=runs/from-a-job: a relative path in a Ray job" in output
    assert "Traceback" not in output
    assert not (REPO_ROOT / "runs/from-a-job").exists()


def test_a_user_error_inside_a_worker_is_one_line(ray_head, synth_plates, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    env = dict(ray_head["env"], RAY_ADDRESS=ray_head["address"])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lpasrn",
            "train",
            "--config",
            "lp_asrn_tiny",
            "--stage",
            "1",
            "--init-checkpoint",
            str(broken),
            "--set",
            *tiny_overrides(synth_plates, tmp_path, "broken"),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    ours = [line for line in result.stderr.splitlines() if line.startswith("error: ")]  # Ray's forwarded logs aside
    assert len(ours) == 1 and f"{broken}: not a loadable glyphray checkpoint" in ours[0]
