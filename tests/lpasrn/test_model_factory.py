"""The config -> model factory: shipped experiments build registered presets, and checkpoints load as before."""

from __future__ import annotations

import logging

import pytest
import torch

from lpasrn.config import LpasrnConfig, ModelConfig, OCRConfig, load_lpasrn_config
from lpasrn.model_factory import build_generator, build_ocr, build_trained_models, generator_preset
from lpasrn.models import GENERATOR_PRESETS, CheckpointMismatchError, create_model

TINY_OCR = dict(embed_dim=32, enc_depth=1, enc_num_heads=2, dec_num_heads=2, enc_mlp_ratio=2, dec_mlp_ratio=2)


@pytest.mark.parametrize(
    ("experiment", "preset"),
    [
        ("lp_asrn", "swinir_maximum"),
        ("lp_asrn_light", "swinir_lightweight"),
        ("lp_asrn_cpu", "swinir_cpu"),
        ("lp_asrn_tiny", "swinir_tiny"),
    ],
)
def test_each_shipped_experiment_builds_a_registered_generator_preset(experiment: str, preset: str) -> None:
    assert generator_preset(load_lpasrn_config(experiment, []).model) == GENERATOR_PRESETS[preset]


def test_the_default_model_config_is_the_maximum_preset() -> None:
    assert generator_preset(ModelConfig()) == GENERATOR_PRESETS["swinir_maximum"]


def test_the_config_built_generator_keeps_the_preset_state_dict_names() -> None:
    cfg = load_lpasrn_config("lp_asrn_tiny", [])
    built = build_generator(cfg.model, cfg.data.scale).state_dict()
    preset = create_model("swinir_tiny", scale=cfg.data.scale).state_dict()
    assert {key: value.shape for key, value in built.items()} == {key: value.shape for key, value in preset.items()}
    assert "layers.1.residual_group.blocks.0.attn.relative_position_bias_table" in built


def test_generator_frames_make_a_multi_frame_generator() -> None:
    cfg = load_lpasrn_config("lp_asrn_tiny", ["model.generator_frames=3", "model.pyramid_layout=mercosur"])
    generator = build_generator(cfg.model, cfg.data.scale)
    assert generator.frame_fusion is not None
    assert generator.pyramid_attention.layout_encoding.default_layout == "Mercosur"
    assert build_generator(load_lpasrn_config("lp_asrn_tiny", []).model, 2).frame_fusion is None


def test_without_pretrained_weights_the_random_start_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="lpasrn.model_factory"):
        build_ocr(OCRConfig(model_type="parseq_tiny"), **TINY_OCR)
    assert "random weights" in caplog.text


def test_a_seeded_stage_skips_the_pretrained_weights(tmp_path) -> None:
    absent = OCRConfig(model_type="slot_cnn", pretrained_path=str(tmp_path / "absent.pt"))
    assert build_ocr(absent, pretrained=False) is not None


def test_trained_models_load_the_weights_they_were_saved_with() -> None:
    cfg = LpasrnConfig.model_validate(load_lpasrn_config("lp_asrn_tiny", []).model_dump(mode="json"))
    torch.manual_seed(0)
    state = {
        "generator": build_generator(cfg.model, cfg.data.scale).state_dict(),
        "ocr": create_model(cfg.ocr.model_type).state_dict(),
    }
    generator, ocr = build_trained_models(cfg, state, "bundle.pt")
    assert all(torch.equal(value, state["generator"][key]) for key, value in generator.state_dict().items())
    assert all(torch.equal(value, state["ocr"][key]) for key, value in ocr.state_dict().items())


def test_trained_weights_of_another_configuration_name_the_keys() -> None:
    cfg = load_lpasrn_config("lp_asrn_tiny", [])
    state = {"generator": create_model("swinir_cpu").state_dict(), "ocr": create_model("slot_cnn").state_dict()}
    with pytest.raises(
        CheckpointMismatchError,
        match=r"^bundle.pt \(generator\) does not fit SwinIRGenerator: .*"
        r"conv_first.weight \(checkpoint \(32, 3, 3, 3\)",
    ):
        build_trained_models(cfg, state, "bundle.pt")
