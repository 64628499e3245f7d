"""`lpasrn predict` on a test set as the benchmark gives it: LR frames only, one submission line per track."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from experiments.errors import UserError
from lpasrn.cli import run as lpasrn_run
from lpasrn.config import load_lpasrn_config
from lpasrn.data.plates import scan_lr_tracks
from lpasrn.inference.bundle import export_bundle
from lpasrn.inference.prediction import load_reader, predict
from lpasrn.inference.submission import read_submission
from lpasrn.model_factory import build_generator
from lpasrn.models import create_model
from tests.conftest import run_cli

TINY_MODEL = [
    "model.swinir_embed_dim=16",
    "model.swinir_num_rstb=1",
    "model.swinir_num_heads=2",
    "data.split_file=null",
]


def tiny_bundle(path: Path, ocr_type: str = "slot_cnn", generator_frames: int = 1) -> str:
    """An untrained tiny generator (with pyramid attention) and OCR in a bundle: enough to check what is read."""
    cfg = load_lpasrn_config(
        "lp_asrn_tiny", [*TINY_MODEL, f"ocr.model_type={ocr_type}", f"model.generator_frames={generator_frames}"]
    )
    torch.manual_seed(0)
    state = {
        "generator": build_generator(cfg.model, cfg.data.scale).state_dict(),
        "ocr": create_model(cfg.ocr.model_type).state_dict(),
        "stage": 4,
        "epoch": 0,
    }
    return export_bundle(state, cfg, path)


@pytest.fixture
def bundle(tmp_path: Path) -> str:
    return tiny_bundle(tmp_path / "bundle.pt")


@pytest.fixture
def lr_only_root(tmp_path: Path) -> Path:
    """Three synthetic tracks with their HR frames and annotations deleted, as the benchmark's test set."""
    from lpasrn.data.synth import SynthConfig, render_dataset

    root = tmp_path / "test"
    render_dataset(root, SynthConfig(tracks=3, seed=1, test_only=True))
    for path in [*root.rglob("hr-*.png"), *root.rglob("annotations.json")]:
        path.unlink()
    return root


def test_a_test_folder_without_hr_frames_or_annotations_predicts_one_line_per_track(
    bundle, lr_only_root, tmp_path, capsys
):
    out = tmp_path / "predictions.txt"
    assert lpasrn_run(["predict", "--checkpoint", bundle, "--data", str(lr_only_root), "--out", str(out)]) == 0
    predictions = read_submission(out)
    assert [p.track_id for p in predictions] == [t.track_id for t in scan_lr_tracks(lr_only_root)]
    assert all(len(p.text) == 7 and 0.0 <= p.confidence <= 1.0 for p in predictions)
    assert f"wrote 3 tracks to {out} (fusion weighted_prob, PyTorch" in capsys.readouterr().out


def test_the_batch_size_does_not_change_the_readings(bundle, lr_only_root):
    reader = load_reader(bundle)
    one, many = (predict(reader, lr_only_root, batch_tracks=size, progress=False) for size in (1, 16))
    assert [(p.track_id, p.text) for p in one] == [(p.track_id, p.text) for p in many]
    assert [p.confidence for p in one] == pytest.approx([p.confidence for p in many], rel=1e-4)


def test_a_multi_frame_generator_reads_each_track_with_every_frame_as_reference_once(lr_only_root, tmp_path):
    reader = load_reader(tiny_bundle(tmp_path / "multi.pt", generator_frames=3))
    assert reader.generator_frames == 3
    one, many = (predict(reader, lr_only_root, batch_tracks=size, progress=False) for size in (1, 16))
    assert [(p.track_id, p.text) for p in one] == [(p.track_id, p.text) for p in many]
    assert len(one) == 3 and all(len(p.text) == 7 for p in one)


def test_a_flat_test_folder_names_tracks_by_their_folder(bundle, lr_only_root, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for number, track in enumerate(scan_lr_tracks(lr_only_root), start=1):
        track.directory.rename(flat / f"track_{number:05d}")
    predictions = predict(load_reader(bundle), flat, fusion="vote", progress=False)
    assert [p.track_id for p in predictions] == ["track_00001", "track_00002", "track_00003"]


def test_a_track_folder_without_lr_frames_is_one_line_naming_it(bundle, lr_only_root, tmp_path):
    empty = lr_only_root / "Scenario-C/Brazilian/track_00099"
    empty.mkdir(parents=True)
    (empty / "hr-001.png").write_bytes(b"")
    result = run_cli(
        "lpasrn", "predict", "--checkpoint", bundle, "--data", str(lr_only_root), "--out", str(tmp_path / "p.txt")
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"error: {empty}: track folder without LR frames (expected lr-001.png .. lr-005.png, or .jpg)"
    )
    assert not (tmp_path / "p.txt").exists()


def test_an_unreadable_frame_is_a_user_error_naming_the_file(bundle, lr_only_root, tmp_path):
    broken = scan_lr_tracks(lr_only_root)[1].lr_paths[2]
    broken.write_bytes(b"not a png")
    assert (
        lpasrn_run(["predict", "--checkpoint", bundle, "--data", str(lr_only_root), "--out", str(tmp_path / "p.txt")])
        == 2
    )
    assert not (tmp_path / "p.txt").exists()
    with pytest.raises(UserError, match=f"{broken}: cannot read image"):
        predict(load_reader(bundle), lr_only_root, progress=False)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--checkpoint", "{tmp}/missing.pt", "--data", "{data}"], "missing.pt: checkpoint not found"),
        (["--checkpoint", "{bundle}", "--data", "{tmp}/nowhere"], "nowhere: test folder not found"),
        (["--checkpoint", "{bundle}", "--data", "{data}", "--fusion", "median"], "--fusion median: expected one of"),
        (["--onnx", "{tmp}", "--data", "{data}"], "meta.json: not found (write the folder with lpasrn export"),
    ],
)
def test_bad_inputs_are_one_line_errors(bundle, lr_only_root, tmp_path, capsys, argv, message):
    values = {"tmp": tmp_path, "data": lr_only_root, "bundle": bundle}
    argv = [arg.format(**values) for arg in argv]
    assert lpasrn_run(["predict", *argv, "--out", str(tmp_path / "p.txt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
