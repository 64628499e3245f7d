"""`lpasrn pack` and reading packed shards without Ray: on a disk and in a bucket (moto), the same samples as the
folder reader, atomic and resumable packing, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from experiments import storage
from experiments.errors import UserError
from lpasrn.cli import run as lpasrn_run
from lpasrn.config import load_lpasrn_config
from lpasrn.data import packed
from lpasrn.data.plates import PlateSRDataset, array_to_tensor
from lpasrn.data.splits import build_splits
from tests.conftest import write_track

# Track 5 in a nested extra folder and a JPEG track: the pack keeps any depth and the encoded bytes as they are.
SPLIT = """Scenario-A/Brazilian/track_00002 train
Scenario-A/Brazilian/track_00001 train
Scenario-A/Mercosur/track_00003 train
Scenario-B/Mercosur/track_00004 val
Scenario-B/Brazilian/track_00005 val
Scenario-B/Mercosur/track_00006 test
"""


@pytest.fixture
def split_root(plate_root: Path) -> Path:
    write_track(plate_root, "Scenario-B/Mercosur/track_00006", "MNO5P67", "Mercosur", frames=3, ext="jpg", seed=9)
    for old in (plate_root / "Scenario-B/Mercosur/track_00006").glob("*.png"):
        old.unlink()
    (plate_root / "split.txt").write_text(SPLIT)  # the file's order, not the folders', orders a split
    return plate_root


def _location(where: str, tmp_path: Path, request) -> str:
    return str(tmp_path / "packed") if where == "disk" else request.getfixturevalue("s3_bucket") + "/plates"


def _same_items(first: PlateSRDataset, second: PlateSRDataset) -> None:
    assert len(first) == len(second) > 0
    for index in range(len(first)):
        a, b = first[index], second[index]
        assert a.keys() == b.keys()
        assert torch.equal(a["lr"], b["lr"]) and torch.equal(a["hr"], b["hr"])
        assert {k: v for k, v in a.items() if k not in ("lr", "hr")} == {
            k: v for k, v in b.items() if k not in ("lr", "hr")
        }


@pytest.mark.parametrize("where", ["disk", "bucket"])
def test_a_pack_gives_the_folder_readers_samples_split_by_split(where, split_root, tmp_path, request):
    location = _location(where, tmp_path, request)
    summary = packed.pack_dataset(split_root, location, shard_size=2)
    assert summary.written == 4 and summary.resumed == 0  # train 2 shards, val 1, test 1
    assert [shard.path for shard in summary.manifest.shards] == [
        "shards/train-00000.parquet",
        "shards/train-00001.parquet",
        "shards/val-00000.parquet",
        "shards/test-00000.parquet",
    ]
    folder_splits, _ = build_splits(split_root)
    packed_splits, skipped = build_splits(location)
    assert skipped == {}
    for split in ("train", "val", "test"):
        assert [t.track_id for t in packed_splits[split]] == [t.track_id for t in folder_splits[split]]
        _same_items(
            PlateSRDataset(folder_splits[split], (16, 48), 2), PlateSRDataset(packed_splits[split], (16, 48), 2)
        )
    assert packed_splits["train"][0].track_id == "Scenario-A/Brazilian/track_00002"
    assert packed_splits["test"][0].lr_paths[0].name.endswith("#Scenario-B/Mercosur/track_00006/lr-001.jpg")
    manifest = json.loads(storage.read_bytes(storage.join(location, packed.MANIFEST_NAME)))
    assert manifest["splits"]["train"] == {"tracks": 3, "samples": 15}
    assert manifest["splits"]["test"] == {"tracks": 1, "samples": 3}


def test_decoded_rows_are_the_datasets_tensors(split_root, tmp_path):
    location = packed.pack_dataset(split_root, tmp_path / "packed", shard_size=10).location
    shard = packed.read_shard(packed.read_manifest(location).shard_uris("val")[0])
    decoded = packed.decode_rows(shard.to_pydict(), (16, 48), 2)
    dataset = PlateSRDataset(build_splits(split_root)[0]["val"], (16, 48), 2)
    assert decoded["lr"].dtype == np.uint8 and decoded["hr"].shape == (10, 32, 96, 3)
    for row in range(10):
        item = dataset[row]
        assert torch.equal(array_to_tensor(decoded["lr"][row]), item["lr"])
        assert torch.equal(array_to_tensor(decoded["hr"][row]), item["hr"])
        assert (decoded["index"][row], decoded["frame"][row], decoded["track_id"][row], decoded["text"][row]) == (
            item["index"],
            item["frame"],
            item["track_id"],
            item["text"],
        )


def test_an_interrupted_pack_resumes_and_no_reader_opens_it_before(split_root, s3_bucket, monkeypatch):
    location = f"{s3_bucket}/plates"
    real_write, calls = packed._write, []

    def dies_at_the_third_write(uri, data):
        calls.append(uri)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real_write(uri, data)

    monkeypatch.setattr(packed, "_write", dies_at_the_third_write)
    with pytest.raises(KeyboardInterrupt):
        packed.pack_dataset(split_root, location, shard_size=2)
    assert calls[0].endswith(packed.PLAN_NAME) and not storage.exists(storage.join(location, packed.MANIFEST_NAME))
    with pytest.raises(UserError, match="the pack did not finish; run the same lpasrn pack command again"):
        packed.read_manifest(location)
    monkeypatch.setattr(packed, "_write", real_write)
    summary = packed.pack_dataset(split_root, location, shard_size=2)
    assert (summary.resumed, summary.written) == (1, 3)
    assert packed.pack_dataset(split_root, location, shard_size=2).already_complete
    train = build_splits(location)[0]["train"]
    assert sum(t.num_frames for t in train) == 15


def test_another_pack_at_the_same_place_is_refused(split_root, tmp_path):
    location = tmp_path / "packed"
    packed.pack_dataset(split_root, location, shard_size=2)
    with pytest.raises(UserError, match="finished pack of other tracks or another --shard-size"):
        packed.pack_dataset(split_root, location, shard_size=3)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="exists and is not empty"):
        packed.pack_dataset(split_root, tmp_path / "busy")


def test_overwrite_replaces_another_pack_in_a_bucket(split_root, s3_bucket, capsys):
    location = f"{s3_bucket}/plates"
    packed.pack_dataset(split_root, location, shard_size=1)
    storage.write_bytes(storage.join(location, "notes.txt"), b"mine")
    assert lpasrn_run(["pack", str(split_root), "--out", location, "--shard-size", "2"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert lpasrn_run(["pack", str(split_root), "--out", location, "--shard-size", "2", "--overwrite"]) == 0
    assert "wrote 4 shards" in capsys.readouterr().out
    assert packed.read_manifest(location).shard_size == 2
    assert "notes.txt" not in storage.list_files(location) and len(storage.list_files(location)) == 6


def test_pack_and_check_data_on_the_command_line(split_root, s3_bucket, capsys):
    location = f"{s3_bucket}/plates"
    assert lpasrn_run(["pack", str(split_root), "--out", location, "--shard-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "wrote 4 shards and manifest.json" in out and "train 3 tracks / 15 frame pairs" in out
    assert lpasrn_run(["check-data", location]) == 0
    out = capsys.readouterr().out
    assert "packed dataset" in out and "4 shards" in out
    assert "train      3 tracks      15 frame pairs" in out and "test       1 tracks       3 frame pairs" in out
    assert lpasrn_run(["check-data", location, "--verify-images"]) == 0
    assert "verified 56 images" in capsys.readouterr().out
    assert lpasrn_run(["pack", str(split_root), "--out", location, "--shard-size", "2"]) == 0
    assert "already packed, nothing to do" in capsys.readouterr().out


def test_bad_packed_input_is_one_line(split_root, s3_bucket, tmp_path, capsys):
    assert lpasrn_run(["check-data", f"{s3_bucket}/nothing-here"]) == 2
    assert "nothing-here: no manifest.json: not a packed dataset" in capsys.readouterr().err
    location = f"{s3_bucket}/plates"
    packed.pack_dataset(split_root, location, shard_size=2)
    storage.write_bytes(storage.join(location, "shards/val-00000.parquet"), b"not parquet")
    assert lpasrn_run(["check-data", location]) == 2
    err = capsys.readouterr().err
    assert "val-00000.parquet: not a readable Parquet shard" in err and "Traceback" not in err
    assert lpasrn_run(["check-data", location, "--split-file", str(split_root / "split.txt")]) == 2
    assert "split is stored in its shards" in capsys.readouterr().err
    assert lpasrn_run(["pack", str(split_root), "--out", str(tmp_path / "p"), "--shard-size", "0"]) == 2
    assert "--shard-size 0" in capsys.readouterr().err


def test_data_root_keeps_a_uri(tmp_path):
    cfg = load_lpasrn_config("lp_asrn_tiny", ["data.root=s3://bucket/plates", "data.split_file=null"])
    assert cfg.data.root == "s3://bucket/plates" and cfg.with_absolute_paths().data.root == "s3://bucket/plates"
    local = load_lpasrn_config("lp_asrn_tiny", [f"data.root={tmp_path}/plates"]).with_absolute_paths()
    assert local.data.root == tmp_path / "plates"
