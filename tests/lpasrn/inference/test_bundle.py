"""The bundle records which stages trained its generator and OCR, and loading it warns about an untrained one."""

from __future__ import annotations

import logging

import pytest
import torch

from lpasrn.checkpoint import describe_trained
from lpasrn.config import load_lpasrn_config
from lpasrn.inference.bundle import export_bundle, load_bundle
from lpasrn.model_factory import build_generator
from lpasrn.models import create_parseq
from lpasrn.training.stages import stage_table, trained_record

TINY_MODEL = [
    "model.swinir_embed_dim=16",
    "model.swinir_num_rstb=1",
    "model.swinir_num_heads=2",
    "ocr.model_type=parseq_micro",
    "data.split_file=null",
]


def test_the_record_follows_the_seed_chain_and_skips_stages_that_trained_nothing() -> None:
    stages = stage_table(load_lpasrn_config("lp_asrn_tiny", []))
    after0 = trained_record(None, initialised=False, stage=stages[0], trained=True)
    assert after0 == {"generator": [], "ocr": [0], "history_complete": True}
    after1 = trained_record(after0, initialised=True, stage=stages[1], trained=True)
    after2_without_epochs = trained_record(after1, initialised=True, stage=stages[2], trained=False)
    after3 = trained_record(after2_without_epochs, initialised=True, stage=stages[3], trained=True)
    assert after3 == {"generator": [1, 3], "ocr": [0, 3], "history_complete": True}
    assert describe_trained(after3) == "generator trained in stages 1, 3; OCR in stages 0, 3"


def test_a_seed_without_a_record_makes_the_history_incomplete() -> None:
    stages = stage_table(load_lpasrn_config("lp_asrn_tiny", []))
    record = trained_record(None, initialised=True, stage=stages[0], trained=True)
    assert record == {"generator": [], "ocr": [0], "history_complete": False}
    assert describe_trained(record) == "generator trained in no recorded stage; OCR in stage 0"


def write_bundle(path, trained) -> str:
    cfg = load_lpasrn_config("lp_asrn_tiny", TINY_MODEL)
    state = {
        "generator": build_generator(cfg.model, cfg.data.scale).state_dict(),
        "ocr": create_parseq(cfg.ocr.model_type).state_dict(),
        "stage": 0,
        "epoch": 0,
        "trained": trained,
    }
    return export_bundle(state, cfg, path)


@pytest.mark.parametrize(
    ("trained", "warns"),
    [
        ({"generator": [], "ocr": [0], "history_complete": True}, True),
        ({"generator": [1], "ocr": [0], "history_complete": True}, False),
        ({"generator": [], "ocr": [0], "history_complete": False}, False),  # unknown: it may have been trained
        (None, False),  # a bundle from before the record
    ],
)
def test_loading_warns_only_when_the_generator_surely_never_trained(tmp_path, caplog, trained, warns) -> None:
    bundle = write_bundle(tmp_path / "bundle.pt", trained)
    assert torch.load(bundle, weights_only=True)["trained"] == trained
    with caplog.at_level(logging.WARNING, logger="lpasrn"):
        load_bundle(bundle)
    assert ("the generator was never trained" in caplog.text) is warns
