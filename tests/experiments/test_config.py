"""Experiment files: presets load, overrides apply, every bad input is one line naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from digits.config import DigitsConfig, load_digits_config
from experiments.config import RESOLVED_CONFIG_NAME, list_presets, load_config, save_resolved_config
from experiments.errors import UserError
from lpasrn.config import STAGE_ORDER, LpasrnConfig, load_lpasrn_config


def write_yaml(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", list_presets("lpasrn"))
def test_lpasrn_presets_load(name):
    cfg = load_lpasrn_config(name)
    assert tuple(stage.name for stage in cfg.stages) == STAGE_ORDER


def test_maximum_preset_has_seed_values():
    cfg = load_lpasrn_config("lp_asrn")
    assert (
        cfg.model.swinir_embed_dim,
        cfg.model.swinir_num_rstb,
        cfg.model.swinir_num_heads,
        cfg.model.swinir_window_size,
        cfg.model.swinir_num_blocks_per_rstb,
        cfg.model.swinir_mlp_ratio,
    ) == (144, 8, 8, 6, 3, 6.0)
    assert [s.epochs for s in cfg.stages] == [50, 30, 200, 100, 50]
    assert [s.lr for s in cfg.stages] == [5e-4, 1e-4, 2e-4, 1e-5, 5e-6]
    assert [s.freeze_ocr for s in cfg.stages] == [False, True, True, False, True]
    assert cfg.stages[4].hard_mining.difficulty_alpha == 2.0 and cfg.stages[4].hard_mining.reweight_interval == 5


def test_light_preset_matches_seed():
    model = load_lpasrn_config("lp_asrn_light").model
    assert (
        model.swinir_embed_dim,
        model.swinir_num_rstb,
        model.swinir_num_heads,
        model.swinir_window_size,
        model.swinir_num_blocks_per_rstb,
        model.swinir_mlp_ratio,
        model.use_pyramid_attention,
    ) == (96, 4, 6, 8, 2, 4.0, False)


def test_defaults_equal_the_stage_table_of_the_seed():
    assert LpasrnConfig().stages == load_lpasrn_config("lp_asrn").stages


def test_overrides_reach_nested_keys_and_list_items():
    cfg = load_lpasrn_config(
        "lp_asrn",
        [
            "stages.2.epochs=5",
            "model.swinir_embed_dim=96",
            "data.lr_size=[20, 60]",
            "ocr.pretrained_path=hf://a/b/c.pt",
        ],
    )
    assert cfg.stages[2].epochs == 5
    assert cfg.model.swinir_embed_dim == 96
    assert cfg.data.lr_size == (20, 60) and cfg.data.hr_size == (40, 120)
    assert cfg.ocr.pretrained_path == "hf://a/b/c.pt"


def test_override_of_a_section_missing_from_the_file_starts_from_defaults(tmp_path):
    path = write_yaml(tmp_path / "small.yaml", {"run": {"name": "x"}})
    cfg = load_lpasrn_config(path, ["stages.3.lr=0.5"])
    assert cfg.stages[3].lr == 0.5 and cfg.stages[0].epochs == 50


def test_seed_spelling_mercocur_is_accepted():
    assert load_lpasrn_config("lp_asrn", ["model.pyramid_layout=mercocur"]).model.pyramid_layout == "mercosur"


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"model": {"swinir_embed_dim": 144, "typo_key": 1}}, "model.typo_key: unknown key"),
        ({"model": {"swinir_num_rstb": "eight"}}, "model.swinir_num_rstb: Input should be a valid integer"),
        ({"run": {"num_workers": 0}}, "run.num_workers: Input should be greater than or equal to 1"),
        ({"model": {"swinir_embed_dim": 100, "swinir_num_heads": 8}}, "must be divisible by swinir_num_heads"),
        (
            {"stages": [{"name": "warmup", "epochs": 1, "lr": 1, "loss_components": ["l1"], "freeze_ocr": True}]},
            "expected the five stages in order",
        ),
        ({"data": {"scale": 5}}, "data.scale: Input should be 2, 3 or 4"),
    ],
)
def test_bad_files_name_file_and_key(tmp_path, data, expected):
    path = write_yaml(tmp_path / "bad.yaml", data)
    with pytest.raises(UserError) as err:
        load_lpasrn_config(path)
    message = str(err.value)
    assert str(path) in message and expected in message and "\n" not in message


def test_impossible_stage_combination_is_rejected(tmp_path):
    with pytest.raises(UserError, match=r"--set stages.0.freeze_ocr=true: stages.0: .*freeze_ocr must be false"):
        load_lpasrn_config("lp_asrn", ["stages.0.freeze_ocr=true"])


@pytest.mark.parametrize(
    "override, expected",
    [
        ("stages.9.epochs=1", "index 9 out of range"),
        ("noequals", "expected key.path=value"),
        ("model.swinir_embed_dim.x=1", "is a value, not a section"),
        ("stages.x.epochs=1", "is a list, use an index"),
        ("model.swinir_embed_dim=abc", "--set model.swinir_embed_dim=abc: model.swinir_embed_dim"),
    ],
)
def test_bad_overrides_name_the_override(override, expected):
    with pytest.raises(UserError, match=expected):
        load_lpasrn_config("lp_asrn", [override])


def test_missing_file_invalid_yaml_and_non_mapping(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_lpasrn_config(tmp_path / "absent.yaml")
    with pytest.raises(UserError, match=r"broken.yaml: invalid YAML at line \d+, column \d+"):
        load_lpasrn_config(write_yaml(tmp_path / "broken.yaml", "model:\n  x: [1, 2\n"))
    with pytest.raises(UserError, match="top level must be a mapping"):
        load_lpasrn_config(write_yaml(tmp_path / "list.yaml", "- 1\n- 2\n"))


def test_resolved_config_round_trips(tmp_path):
    cfg = load_lpasrn_config("lp_asrn_tiny", ["stages.1.epochs=7"])
    path = save_resolved_config(cfg, tmp_path / "run")
    assert path.name == RESOLVED_CONFIG_NAME
    assert load_config(LpasrnConfig, path) == cfg
    assert not list((tmp_path / "run").glob(".*.tmp*")), "no temporary file left behind"


def test_digits_defaults_follow_the_original():
    cfg = load_digits_config("default")
    assert (cfg.batch_size, cfg.learning_rate, cfg.optimizer, cfg.input_height, cfg.input_width) == (
        32,
        1e-3,
        "nadam",
        32,
        20,
    )
    assert cfg.export_group == "10cls_GRAY"
    assert load_digits_config(None, ["nb_classes=100", "input_channels=3"]).export_group == "100cls_RGB"


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["use_qat=true", "quantize_model=false"], "use_qat needs quantize_model"),
        (["esp_dl_quantize=true", "quantize_model=false"], "esp_dl_quantize needs quantize_model"),
        (["nb_classes=12"], "nb_classes: Input should be 10, 100 or 11"),
        (["data_sources=[{path: a, weight: 0}]"], "data_sources.0.weight"),
        (["optimizer=adagrad"], "optimizer"),
    ],
)
def test_digits_rules(overrides, expected):
    with pytest.raises(UserError, match=expected):
        load_config(DigitsConfig, None, overrides)


def test_the_primary_metric_lives_in_the_stage_config():
    stages = load_lpasrn_config("lp_asrn").stages
    assert [(s.primary_metric, s.metric_mode) for s in stages] == [("val_loss", "min")] * 2 + [
        ("val_word_acc", "max")
    ] * 3
    chosen = load_lpasrn_config(
        "lp_asrn", ["stages.1.primary_metric=val_psnr", "stages.3.primary_metric=val_track_acc"]
    )
    assert chosen.stages[1].metric_mode == "max" and chosen.stages[3].primary_metric == "val_track_acc"


def test_an_ocr_stage_cannot_be_chosen_by_image_quality():
    with pytest.raises(UserError, match=r"stages.0: .*the OCR stage makes no SR images"):
        load_lpasrn_config("lp_asrn", ["stages.0.primary_metric=val_ssim"])
    with pytest.raises(UserError, match=r"stages.1.primary_metric"):
        load_lpasrn_config("lp_asrn", ["stages.1.primary_metric=val_accuracy"])
