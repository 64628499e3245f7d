"""evaluate / infer with a bundle: which tracks are scored, and where SR images go."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from experiments.errors import UserError
from lpasrn.cli import run as lpasrn_run
from lpasrn.config import load_lpasrn_config
from lpasrn.evaluation import evaluate
from lpasrn.models import build_generator, create_parseq
from lpasrn.training.bundle import export_bundle

TINY_MODEL = ["model.swinir_embed_dim=16", "model.swinir_num_rstb=1", "model.swinir_num_heads=2",
              "ocr.model_type=parseq_micro", "data.split_file=null"]


@pytest.fixture
def bundle(tmp_path: Path) -> str:
    """An untrained tiny generator and OCR in a bundle: enough to check what gets scored and written."""
    cfg = load_lpasrn_config("lp_asrn_tiny", TINY_MODEL)
    torch.manual_seed(0)
    state = {"generator": build_generator(cfg.model, cfg.data.scale).state_dict(),
             "ocr": create_parseq(cfg.ocr.model_type).state_dict(), "stage": 4, "epoch": 0}
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
