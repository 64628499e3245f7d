"""The three console commands as a new user runs them: help everywhere, one-line errors with exit 2."""

from __future__ import annotations

import pytest
import yaml

from digits.cli import build_parser as digits_parser
from digits.cli import run as digits_run
from experiments.cli import build_parser as experiments_parser
from experiments.cli import run as experiments_run
from lpasrn.cli import build_parser as lpasrn_parser
from lpasrn.cli import run as lpasrn_run
from tests.conftest import run_cli, tiny_overrides

CLIS = {
    "lpasrn": (lpasrn_parser, lpasrn_run),
    "digits": (digits_parser, digits_run),
    "experiments": (experiments_parser, experiments_run),
}


def _subcommands(parser):
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(action.choices)


@pytest.mark.parametrize("prog", sorted(CLIS))
def test_every_subcommand_has_help(prog, capsys):
    build, run = CLIS[prog]
    for command in [None, *_subcommands(build())]:
        argv = ["--help"] if command is None else [command, "--help"]
        with pytest.raises(SystemExit) as exit_info:
            run(argv)
        assert exit_info.value.code == 0
        assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("prog", sorted(CLIS))
def test_python_dash_m_entry_points(prog):
    result = run_cli(prog, "--help")
    assert result.returncode == 0 and f"usage: {prog}" in result.stdout


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["lpasrn", "config", "--set", "model.swinir_embed_dim=100"], "must be divisible by swinir_num_heads"),
        (["lpasrn", "check-data", "/nonexistent/plates"], "/nonexistent/plates: dataset folder not found"),
        (["digits", "config", "--set", "use_qat=true", "quantize_model=false"], "use_qat needs quantize_model"),
        (["experiments", "validate", "missing.yaml"], "missing.yaml: config file not found"),
        (["lpasrn", "synth", "--out", "/proc/glyphray-plates", "--tracks", "2"], "/proc/glyphray-plates: cannot write"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(argv, expected):
    result = run_cli(*argv)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and expected in result.stderr


def test_config_errors_exit_2_in_process(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  swinir_window_size: 1\n")
    assert lpasrn_run(["config", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {bad}: model.swinir_window_size: Input should be greater than or equal to 2 (got 1)\n"


def test_config_out_writes_the_resolved_config(tmp_path, capsys):
    assert lpasrn_run(["config", "--config", "lp_asrn_tiny", "--set", "stages.4.epochs=9", "--out", str(tmp_path)]) == 0
    resolved = yaml.safe_load((tmp_path / "config.resolved.yaml").read_text())
    assert resolved["stages"][4]["epochs"] == 9 and resolved["model"]["swinir_embed_dim"] == 24


def test_list_models_prints_one_line_per_registered_model(capsys):
    from lpasrn.models import list_models

    assert lpasrn_run(["list-models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == list_models("generator") + list_models("ocr")
    assert any(line.split()[:3] == ["swinir_tiny", "generator", "202,197"] for line in lines)


def test_model_summary_describes_the_configured_models(capsys):
    assert lpasrn_run(["model-summary", "--config", "lp_asrn_tiny"]) == 0
    out = capsys.readouterr().out
    assert "generator: SwinIR x2, embed 24, 2 RSTB x 1 blocks" in out and "OCR: slot_cnn, input 32x96" in out


def test_a_checkpoint_that_does_not_fit_is_one_line_with_exit_code_2(tmp_path, capsys):
    from lpasrn.config import load_lpasrn_config
    from lpasrn.inference.bundle import export_bundle
    from lpasrn.models import create_model

    cfg = load_lpasrn_config("lp_asrn_tiny", [])
    state = {"generator": create_model("swinir_cpu").state_dict(), "ocr": create_model("slot_cnn").state_dict()}
    bundle = export_bundle(state, cfg, tmp_path / "bundle.pt")
    assert lpasrn_run(["evaluate", "--checkpoint", bundle, "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bundle} (generator) does not fit SwinIRGenerator: ") and err.count("\n") == 1


def test_check_data_prints_split_sizes_and_skips_bad(plate_root, capsys):
    (plate_root / "Scenario-A/Brazilian/track_00001/annotations.json").write_text(
        '{"plate_text": "ABC1234", "plate_layout": "Mercosur"}'
    )
    assert lpasrn_run(["check-data", str(plate_root)]) == 2
    assert "position 5 must be a letter" in capsys.readouterr().err
    assert lpasrn_run(["check-data", str(plate_root), "--skip-bad", "--verify-images"]) == 0
    out = capsys.readouterr().out
    assert "skipped 1 bad tracks" in out and "verified 50 images" in out


def test_check_data_root_and_config_both_use_the_dataset_own_split_file(plate_root, capsys):
    tracks = sorted(p.parent.relative_to(plate_root).as_posix() for p in plate_root.rglob("annotations.json"))
    (plate_root / "split.txt").write_text(
        f"{tracks[0]} val\n{tracks[1]} test\n" + "".join(f"{track} train\n" for track in tracks[2:])
    )
    assert lpasrn_run(["check-data", str(plate_root)]) == 0
    by_root = capsys.readouterr().out
    assert (
        lpasrn_run(
            ["check-data", "--config", "lp_asrn_tiny", "--set", f"data.root={plate_root}", "data.split_file=null"]
        )
        == 0
    )
    assert capsys.readouterr().out == by_root
    assert by_root.splitlines()[0] == f"split by {plate_root / 'split.txt'}"
    counts = {line.split()[0]: int(line.split()[1]) for line in by_root.splitlines()[1:4]}
    assert counts == {"train": 4, "val": 1, "test": 1}


def test_train_with_a_file_as_storage_path_is_one_line_and_keeps_the_file(synth_plates, tmp_path, capsys):
    storage = tmp_path / "storage"
    storage.write_text("keep me")
    overrides = [item for override in tiny_overrides(synth_plates, storage, "demo") for item in ("--set", override)]
    assert lpasrn_run(["train", "--config", "lp_asrn_tiny", "--local", "--stage", "1", *overrides]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert f"{storage} is a file, not a folder" in err
    assert storage.read_text() == "keep me"


def test_experiments_validate_detects_the_kind(capsys):
    assert experiments_run(["validate", "lp_asrn", "lp_asrn_tiny", "default"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["lpasrn", "lpasrn", "digits"]


def test_import_sklearn_writes_label_files(tmp_path, capsys):
    assert digits_run(["import-sklearn", "--out", str(tmp_path / "sk")]) == 0
    labels = (tmp_path / "sk/test/labels.txt").read_text().splitlines()
    assert len(labels) == 360 and all(len(line.split("\t")) == 2 for line in labels)
    assert digits_run(["import-sklearn", "--out", str(tmp_path / "sk")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
