"""evaluate / infer with a bundle: which tracks are scored, and where SR images go."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from experiments.errors import UserError
from lpasrn.cli import run as lpasrn_run
from lpasrn.config import load_lpasrn_config
from lpasrn.inference.bundle import export_bundle
from lpasrn.inference.evaluation import evaluate, infer, sr_output_paths
from lpasrn.model_factory import build_generator
from lpasrn.models import create_parseq

TINY_MODEL = [
    "model.swinir_embed_dim=16",
    "model.swinir_num_rstb=1",
    "model.swinir_num_heads=2",
    "ocr.model_type=parseq_micro",
    "data.split_file=null",
]


@pytest.fixture
def bundle(tmp_path: Path) -> str:
    """An untrained tiny generator and OCR in a bundle: enough to check what gets scored and written."""
    cfg = load_lpasrn_config("lp_asrn_tiny", TINY_MODEL)
    torch.manual_seed(0)
    state = {
        "generator": build_generator(cfg.model, cfg.data.scale).state_dict(),
        "ocr": create_parseq(cfg.ocr.model_type).state_dict(),
        "stage": 4,
        "epoch": 0,
    }
    return export_bundle(state, cfg, tmp_path / "bundle.pt")


def write_split(root: Path, test_tracks: int) -> None:
    tracks = sorted(p.parent.relative_to(root).as_posix() for p in root.rglob("annotations.json"))
    lines = [f"{track} {'test' if index < test_tracks else 'train'}" for index, track in enumerate(tracks)]
    (root / "split.txt").write_text("\n".join(lines) + "\n")


def test_a_folder_without_a_split_file_is_a_test_set_scored_whole(bundle, plate_root, capsys):
    result = evaluate(bundle, plate_root)
    assert (result.split, result.num_tracks, result.num_images) == ("test", 6, 30)
    assert lpasrn_run(["evaluate", "--checkpoint", bundle, "--data", str(plate_root)]) == 0
    first_line = capsys.readouterr().out.splitlines()[0]
    assert first_line == f"test: 30 images, 6 tracks scored (every track of {plate_root}: no split file)"


def test_the_dataset_own_split_file_chooses_the_test_tracks(bundle, plate_root):
    write_split(plate_root, test_tracks=2)
    result = evaluate(bundle, plate_root)
    assert (result.num_tracks, result.num_images) == (2, 10)
    assert result.to_json()["origin"] == f"split file {plate_root / 'split.txt'}"


def test_another_split_of_a_folder_without_a_split_file_is_a_user_error(bundle, plate_root):
    with pytest.raises(UserError, match="has no split file, so all of it is a test set"):
        evaluate(bundle, plate_root, split="val")


def test_sr_images_keep_the_inputs_relative_paths_so_none_overwrites_another(bundle, plate_root, tmp_path):
    first = plate_root / "Scenario-A/Brazilian/track_00001/lr-001.png"
    second = plate_root / "Scenario-B/Mercosur/track_00004/lr-001.png"
    readings = infer(bundle, [first, second], tmp_path / "sr")
    written = [reading.sr_path for reading in readings]
    assert written == [
        tmp_path / "sr/Scenario-A/Brazilian/track_00001/lr-001_sr.png",
        tmp_path / "sr/Scenario-B/Mercosur/track_00004/lr-001_sr.png",
    ]
    assert all(path.is_file() for path in written)


def test_a_single_input_writes_straight_into_out(bundle, plate_root, tmp_path):
    image = plate_root / "Scenario-A/Brazilian/track_00001/lr-002.png"
    assert infer(bundle, [image], tmp_path / "sr")[0].sr_path == tmp_path / "sr/lr-002_sr.png"


def test_inputs_differing_only_in_suffix_keep_it_in_their_names(tmp_path):
    png, jpg = tmp_path / "in/a.png", tmp_path / "in/a.jpg"
    assert sr_output_paths([png, jpg], tmp_path / "sr") == [tmp_path / "sr/a_png_sr.png", tmp_path / "sr/a_jpg_sr.png"]


def test_an_lr_trained_ocr_adds_the_ocr_only_baseline_row(bundle, plate_root, capsys):
    result = evaluate(bundle, plate_root, lr_ocr=bundle)
    assert list(result.metrics) == ["sr", "bicubic", "hr", "lr_ocr"]
    assert result.metrics["lr_ocr"]["word_acc"] == result.metrics["bicubic"]["word_acc"]  # same OCR, same images
    assert lpasrn_run(["evaluate", "--checkpoint", bundle, "--data", str(plate_root), "--lr-ocr", bundle]) == 0
    out = capsys.readouterr().out
    assert "LR-trained OCR" in out and "SR + OCR against the LR-trained OCR" in out


def test_an_ocr_stage_with_ocr_input_lr_learns_from_the_lr_frames():
    from lpasrn.models import create_model
    from lpasrn.training.stages import stage_table
    from lpasrn.training.system import PlateSRSystem

    cfg = load_lpasrn_config("lp_asrn_tiny", TINY_MODEL + ["ocr.model_type=slot_cnn", "stages.0.ocr_input=lr"])
    ocr = create_model("slot_cnn").eval()
    system = PlateSRSystem(build_generator(cfg.model, cfg.data.scale), ocr, stage_table(cfg)[0], cfg.loss)
    lr, hr, texts = torch.rand(2, 3, 16, 48), torch.rand(2, 3, 32, 96), ["ABC1234", "BRA2E19"]
    assert torch.equal(system(lr, hr, texts, ["Brazilian", "Mercosur"])["loss"], ocr.training_loss(lr, texts))
    with pytest.raises(UserError, match="ocr_input applies to the OCR stage"):
        load_lpasrn_config("lp_asrn_tiny", ["stages.1.ocr_input=lr"])


def test_an_independent_ocr_reads_sr_bicubic_and_hr_again(bundle, plate_root, capsys):
    result = evaluate(bundle, plate_root, independent_ocr=bundle)
    assert list(result.metrics)[3:] == ["sr_independent", "bicubic_independent", "hr_independent"]
    assert result.metrics["sr_independent"]["word_acc"] == result.metrics["sr"]["word_acc"]  # here the same OCR
    assert lpasrn_run(["evaluate", "--checkpoint", bundle, "--data", str(plate_root), "--independent-ocr", bundle]) == 0
    assert "gain seen by the other OCR" in capsys.readouterr().out


def test_each_row_is_also_scored_per_track_for_every_fusion_in_the_table_and_the_json(
    bundle, plate_root, tmp_path, capsys
):
    import json

    report = tmp_path / "eval.json"
    assert lpasrn_run(["evaluate", "--checkpoint", bundle, "--data", str(plate_root), "--report", str(report)]) == 0
    table = capsys.readouterr().out
    assert "per track, as the benchmark scores it" in table
    assert "conf_gap" in table and "frame_acc" in table and "mean_prob" in table
    fusion = json.loads(report.read_text())["fusion"]
    assert list(fusion) == ["sr", "bicubic", "hr"]
    assert list(fusion["sr"]) == ["single", "vote", "mean_prob", "weighted_prob", "mean_logprob"]
    for row in fusion["sr"].values():
        assert set(row) == {
            "track_acc",
            "char_acc",
            "confidence_gap",
            "mean_confidence_right",
            "mean_confidence_wrong",
            "frame_acc",
        }
        assert row["frame_acc"] == fusion["sr"]["single"]["track_acc"]
