"""Training from packed shards: `--local` reads them with pyarrow and gives exactly the folder's run (losses,
validation figures, the hard-example miner's statistics); Ray Data streams the folder's samples; a stage trains on
Ray Train from a bucket (moto) and the bundle is evaluated on the bucket's test split as on the folder's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from experiments import storage
from lpasrn.config import load_lpasrn_config
from lpasrn.data.packed import pack_dataset
from lpasrn.training.pipeline import LocalLauncher, run_pipeline
from tests.conftest import REPO_ROOT, run_cli, tiny_overrides

pytestmark = pytest.mark.slow
TIMING = ("train_seconds", "train_samples_per_s", "finished_at")


def _packed_overrides(location: str, storage_path, name: str, epochs) -> list[str]:
    overrides = tiny_overrides(storage_path, storage_path, name, epochs)  # root and split file replaced below
    return [item for item in overrides if not item.startswith(("data.root=", "data.split_file="))] + [
        f"data.root={location}",
        "data.split_file=null",
    ]


def _history(run_dir, stage: str) -> list[dict]:
    summary = json.loads(storage.read_bytes(storage.join(run_dir, stage, "metrics.json")))
    return [{k: v for k, v in row.items() if k not in TIMING} for row in summary["history"]]


def test_local_training_from_a_pack_is_the_folders_run_hard_mining_included(synth_plates, tmp_path):
    location = pack_dataset(synth_plates, tmp_path / "packed", shard_size=3).location
    runs = tmp_path / "runs"
    epochs = (1, 0, 0, 0, 2)
    mining = ["stages.4.hard_mining.reweight_interval=1"]
    folder_cfg = load_lpasrn_config("lp_asrn_tiny", tiny_overrides(synth_plates, runs, "folder", epochs) + mining)
    packed_cfg = load_lpasrn_config("lp_asrn_tiny", _packed_overrides(location, runs, "packed", epochs) + mining)
    for cfg in (folder_cfg, packed_cfg):
        cfg = cfg.with_absolute_paths()
        run_pipeline(cfg, LocalLauncher(), [0])
        seed = str(runs / cfg.run.name / "stage0-pretrain" / "best" / "state.pt")
        run_pipeline(cfg, LocalLauncher(), [4], init_checkpoint=seed)  # the miner and its curriculum
    for stage in ("stage0-pretrain", "stage4-hard_mining"):
        folder, packed_run = _history(runs / "folder", stage), _history(runs / "packed", stage)
        assert folder == packed_run, stage
    mined = _history(runs / "packed", "stage4-hard_mining")[-1]
    assert mined["hard_mining_weight_max_over_min"] >= 1.0 and "val_word_acc" in mined


STREAM_CHECK = """
import json, sys
import torch
from experiments.ray_connect import connect
from lpasrn.config import load_lpasrn_config
from lpasrn.data.plates import PlateSRDataset
from lpasrn.data.splits import build_splits
from lpasrn.ray_glue.data import ShardBatches, packed_train_dataset

folder_root, overrides = sys.argv[1], sys.argv[2:]
cfg = load_lpasrn_config("lp_asrn_tiny", overrides).with_absolute_paths()
folder = PlateSRDataset(build_splits(folder_root)[0]["train"], cfg.data.lr_size, cfg.data.scale)
connect()  # a private local Ray, as the CLI starts one
dataset, samples = packed_train_dataset(cfg)
batches = ShardBatches(dataset.iterator(), samples, world_size=1, batch_size=8, seed=0)
seen, same = [], True
for batch in batches:
    for row, index in enumerate(batch["index"].tolist()):
        item = folder[index]
        same &= torch.equal(batch["lr"][row], item["lr"]) and torch.equal(batch["hr"][row], item["hr"])
        same &= (batch["text"][row], batch["track_id"][row], int(batch["frame"][row])) == \
            (item["text"], item["track_id"], item["frame"])
        seen.append(index)
print(json.dumps({"same": bool(same), "seen": seen, "samples": samples, "folder": len(folder),
                  "batches": len(batches)}))
"""


def test_ray_data_streams_the_folders_training_samples(synth_plates, tmp_path):
    location = pack_dataset(synth_plates, tmp_path / "packed", shard_size=1).location
    overrides = _packed_overrides(location, tmp_path, "stream", (1, 0, 0, 0, 0))
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    env.update(PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(
        [sys.executable, "-c", STREAM_CHECK, str(synth_plates), *overrides],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["same"], "a streamed sample differs from the folder reader's sample of the same index"
    assert found["samples"] == found["folder"] == 20 and found["batches"] == 2  # drop_last, as the DataLoader path
    assert len(found["seen"]) == 16 and len(set(found["seen"])) == 16


def test_a_stage_streams_from_a_bucket_on_ray_train_and_evaluates_like_the_folder(
    synth_plates, s3_bucket, tmp_path, monkeypatch
):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a private local Ray, which sees the S3 settings
    location = f"{s3_bucket}/plates"
    packed = run_cli("lpasrn.cli", "pack", str(synth_plates), "--out", location, "--shard-size", "2")
    assert packed.returncode == 0, packed.stderr[-2000:]
    runs = f"{s3_bucket}/runs"
    overrides = _packed_overrides(location, tmp_path, "streamed", (1, 0, 0, 0, 0))
    overrides = [item for item in overrides if not item.startswith("run.storage_path=")] + [f"run.storage_path={runs}"]
    trained = run_cli(
        "lpasrn.cli",
        "train",
        "--config",
        "lp_asrn_tiny",
        "--stage",
        "0",
        "--num-workers",
        "1",
        "--set",
        *overrides,
        timeout=600,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    run_dir = storage.join(runs, "streamed")
    summary = json.loads(storage.read_bytes(storage.join(run_dir, "stage0-pretrain", "metrics.json")))
    ray_row = summary["history"][0]
    assert summary["finished"] and ray_row["epoch"] == 1 and ray_row["train_loss"] > 0
    assert ray_row["train_samples"] == 16  # 20 pairs, 2 full batches

    # Its best checkpoint validated again in one process on the folder: the same figures.
    best = storage.join(run_dir, "stage0-pretrain", "best", "state.pt")
    again = tiny_overrides(synth_plates, tmp_path, "revalidated", (0, 0, 0, 0, 0))
    local = run_cli(
        "lpasrn.cli",
        "train",
        "--config",
        "lp_asrn_tiny",
        "--local",
        "--stage",
        "0",
        "--init-checkpoint",
        best,
        "--set",
        *again,
    )
    assert local.returncode == 0, local.stderr[-3000:]
    local_row = _history(tmp_path / "revalidated", "stage0-pretrain")[0]
    for key in ("val_word_acc", "val_char_acc", "val_track_acc"):
        assert local_row[key] == ray_row[key], key
    assert local_row["val_loss"] == pytest.approx(ray_row["val_loss"], rel=1e-5)

    bundle = storage.join(run_dir, "lp_asrn_bundle.pt")
    reports = {}
    for name, data in (("bucket", location), ("folder", str(synth_plates))):
        reports[name] = tmp_path / f"{name}.json"
        evaluated = run_cli(
            "lpasrn.cli", "evaluate", "--checkpoint", bundle, "--data", data, "--report", str(reports[name])
        )
        assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    bucket, folder = (json.loads(reports[name].read_text()) for name in ("bucket", "folder"))
    assert bucket["metrics"] == folder["metrics"] and bucket["num_images"] == folder["num_images"] == 10
