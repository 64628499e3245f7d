"""A run whose storage_path is an S3 bucket (moto on localhost): local and Ray Train stages, seeding, skipping,
the bundle and evaluation all read and write the bucket, and no scratch folder is left behind."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import torch

from experiments import storage
from lpasrn.checkpoint import load_state
from tests.conftest import run_cli, tiny_overrides

pytestmark = pytest.mark.slow


def _train(*flags: str, overrides: list[str]):
    return run_cli("lpasrn.cli", "train", "--config", "lp_asrn_tiny", *flags, "--set", *overrides, timeout=600)


def test_stages_on_local_and_ray_train_share_a_bucket(synth_plates, s3_bucket, tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # the Ray stage starts its own private local Ray
    runs = f"{s3_bucket}/runs"
    overrides = tiny_overrides(synth_plates, tmp_path, "s3run", epochs=(1, 2, 1, 1, 1))
    overrides = [item for item in overrides if not item.startswith("run.storage_path=")] + [f"run.storage_path={runs}"]
    run_dir = storage.join(runs, "s3run")

    first = _train("--local", "--stage", "0", overrides=overrides)
    assert first.returncode == 0, first.stderr[-3000:]
    assert json.loads(storage.read_bytes(storage.join(run_dir, "stage0-pretrain", "metrics.json")))["finished"]

    second = _train("--stage", "1", "--num-workers", "1", overrides=overrides)  # Ray Train, starting from the bucket
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"starting from {run_dir}/stage0-pretrain/best/state.pt" in second.stderr
    stage1 = storage.join(run_dir, "stage1-warmup")
    summary = json.loads(storage.read_bytes(storage.join(stage1, "metrics.json")))
    assert summary["finished"] and [row["epoch"] for row in summary["history"]] == [1, 2]
    assert storage.exists(storage.join(stage1, "events")) and storage.exists(storage.join(stage1, "last", "state.pt"))
    from pyarrow import fs

    filesystem, ray_run = fs.FileSystem.from_uri(storage.join(runs, "s3run-stage1"))
    saved = [
        info.path for info in filesystem.get_file_info(fs.FileSelector(ray_run, recursive=True, allow_not_found=True))
    ]
    assert not any("/checkpoint_" in path for path in saved)  # one checkpoint tree: the stage folders, no Ray copies

    # The OCR is frozen in stage 1: it is stage 0's best, read back from the bucket.
    stage0_best, stage1_best = load_state(f"{run_dir}/stage0-pretrain/best"), load_state(f"{stage1}/best")
    assert all(torch.equal(stage0_best["ocr"][k], stage1_best["ocr"][k]) for k in stage0_best["ocr"])
    bundle = storage.join(run_dir, "lp_asrn_bundle.pt")
    assert f"inference bundle: {bundle}" in second.stdout
    final = load_state(bundle)
    assert all(torch.equal(final["generator"][k], stage1_best["generator"][k]) for k in final["generator"])

    again = _train("--local", "--stage", "0", overrides=overrides)
    assert again.returncode == 0 and "finished earlier, skipped" in again.stderr

    report = tmp_path / "eval.json"
    evaluated = run_cli(
        "lpasrn.cli", "evaluate", "--checkpoint", bundle, "--data", str(synth_plates), "--report", str(report)
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "word_acc" in json.loads(report.read_text())["metrics"]["sr"]
    assert _scratch_folders(run_dir) == []


def _scratch_folders(run_dir: str) -> list[Path]:
    """Scratch folders of this run's stages still in the temp folder (a MirroredFolder names them by tag)."""
    import hashlib

    tags = [
        hashlib.sha1(storage.join(run_dir, stage).encode()).hexdigest()[:10]
        for stage in ("stage0-pretrain", "stage1-warmup")
    ]
    return [path for tag in tags for path in Path(tempfile.gettempdir()).glob(f"glyphray-*-{tag}-*")]


def test_an_unknown_scheme_is_one_line(synth_plates, tmp_path):
    overrides = tiny_overrides(synth_plates, tmp_path, "bad", epochs=(1, 1, 1, 1, 1))
    overrides = [item for item in overrides if not item.startswith("run.storage_path=")]
    result = _train("--local", "--stage", "0", overrides=overrides + ["run.storage_path=nosuch://bucket/runs"])
    assert result.returncode == 2
    assert "nosuch://bucket/runs" in result.stderr and "Traceback" not in result.stderr
