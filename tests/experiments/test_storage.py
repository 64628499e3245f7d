"""Run locations on disk and in an S3-compatible object store (moto on localhost)."""

from __future__ import annotations

import pytest
import torch

from experiments import storage
from experiments.errors import UserError
from lpasrn.checkpoint import load_state, save_state


def test_join_keeps_the_scheme_of_a_uri(tmp_path):
    assert storage.join("s3://bucket/runs/", "name", "stage0-pretrain") == "s3://bucket/runs/name/stage0-pretrain"
    assert storage.join(tmp_path, "a", "b") == str(tmp_path / "a" / "b")
    assert storage.is_uri("gs://bucket") and not storage.is_uri(tmp_path)


@pytest.mark.parametrize("where", ["disk", "s3"])
def test_write_read_exists_round_trip(where, tmp_path, request):
    root = str(tmp_path) if where == "disk" else request.getfixturevalue("s3_bucket") + "/runs"
    path = storage.join(root, "run", "config.resolved.yaml")
    assert not storage.exists(path)
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(path)
    storage.write_bytes(path, b"first")
    storage.write_bytes(path, b"second")
    assert storage.exists(path) and storage.read_bytes(path) == b"second"


def test_mirrored_folder_uploads_what_changed_and_the_marker_last(s3_bucket):
    location = storage.join(s3_bucket, "run", "stage1-warmup")
    folder = storage.MirroredFolder(location)
    assert folder.remote and folder.local.is_dir() and not folder.local.is_relative_to("/work")
    (folder.local / "metrics.json").write_text('{"finished": false}')
    (folder.local / "last").mkdir()
    (folder.local / "last" / "state.pt").write_bytes(b"weights-1")
    (folder.local / ".state.pt.tmp").write_bytes(b"half written")
    assert folder.sync(last=["metrics.json"]) == ["last/state.pt", "metrics.json"]
    assert folder.sync(last=["metrics.json"]) == []  # nothing changed, nothing sent
    (folder.local / "last" / "state.pt").write_bytes(b"weights-2 (longer)")
    assert folder.sync() == ["last/state.pt"]
    assert storage.read_bytes(storage.join(location, "last", "state.pt")) == b"weights-2 (longer)"
    assert not storage.exists(storage.join(location, ".state.pt.tmp"))
    folder.close()
    assert not folder.local.exists()


def test_a_local_mirrored_folder_is_the_folder_itself(tmp_path):
    folder = storage.MirroredFolder(tmp_path / "stage")
    (tmp_path / "stage").mkdir()
    (tmp_path / "stage" / "metrics.json").write_text("{}")
    assert folder.local == tmp_path / "stage" and folder.sync() == []
    folder.close()
    assert (tmp_path / "stage" / "metrics.json").is_file()


def test_checkpoints_load_from_a_bucket(s3_bucket, tmp_path):
    state = {"epoch": 3, "generator": {"w": torch.arange(4.0)}}
    local = save_state(tmp_path / "best", state)
    remote_folder = storage.join(s3_bucket, "run", "stage0-pretrain", "best")
    storage.upload_file(local, storage.join(remote_folder, "state.pt"))
    for reference in (remote_folder, storage.join(remote_folder, "state.pt")):
        loaded = load_state(reference)
        assert loaded["epoch"] == 3 and torch.equal(loaded["generator"]["w"], torch.arange(4.0))
    with pytest.raises(UserError, match="checkpoint not found"):
        load_state(storage.join(s3_bucket, "run", "missing"))
    storage.write_bytes(storage.join(s3_bucket, "broken.pt"), b"not a checkpoint")
    with pytest.raises(UserError, match="not a loadable glyphray checkpoint"):
        load_state(storage.join(s3_bucket, "broken.pt"))


@pytest.mark.parametrize("where", ["disk", "s3"])
def test_list_and_remove_a_tree(where, tmp_path, request):
    root = str(tmp_path / "tree") if where == "disk" else request.getfixturevalue("s3_bucket") + "/tree"
    assert storage.list_files(root) == []
    for name in ("b.txt", "a/c.json", "a/d/e.bin"):
        storage.write_bytes(storage.join(root, name), name.encode())
    assert storage.list_files(root) == ["a/c.json", "a/d/e.bin", "b.txt"]
    storage.remove_tree(root)
    storage.remove_tree(root)  # nothing there is fine
    assert storage.list_files(root) == [] and not storage.exists(storage.join(root, "b.txt"))


def test_a_mirror_at_a_fixed_scratch_folder_pulls_what_is_wanted_and_does_not_send_it_back(
    s3_bucket, tmp_path, monkeypatch
):
    location = f"{s3_bucket}/exp"
    storage.write_bytes(storage.join(location, "journal.log"), b"mine")
    storage.write_bytes(storage.join(location, "trial_1", "result.json"), b"{}")
    storage.write_bytes(storage.join(location, "trial_1", "checkpoint_000000", "model.keras"), b"big")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    local = storage.scratch_folder(location)
    assert local == storage.scratch_folder(location) and local.parent == tmp_path
    mirror = storage.MirroredFolder(location, local=local)
    assert mirror.pull(lambda name: "checkpoint_" not in name) == ["journal.log", "trial_1/result.json"]
    assert (local / "journal.log").read_bytes() == b"mine" and not (local / "trial_1" / "checkpoint_000000").exists()
    assert mirror.sync() == []  # pulled files count as sent
    (local / "journal.log").write_bytes(b"mine, longer")
    assert mirror.sync() == ["journal.log"]
    assert storage.read_bytes(storage.join(location, "journal.log")) == b"mine, longer"
    mirror.close()
    assert not local.exists()


def test_an_upload_that_fails_is_one_line_naming_the_place(s3_server, tmp_path):
    mirror = storage.MirroredFolder("s3://no-such-bucket-here/exp")
    (mirror.local / "metrics.json").write_text("{}")
    with pytest.raises(UserError, match="s3://no-such-bucket-here/exp/metrics.json: cannot upload"):
        mirror.sync()
    mirror.close()
