"""The five stages end to end in one process (`--local`): seeding, resumption, skipping, events, outputs."""

from __future__ import annotations

import json

import pytest
import torch

from lpasrn.checkpoint import load_state
from lpasrn.cli import run as lpasrn_run
from lpasrn.config import load_lpasrn_config
from lpasrn.training.fault_injection import FAIL_AT_EPOCH_ENV, FAIL_MARKER_ENV
from lpasrn.training.pipeline import LocalLauncher, run_pipeline
from tests.conftest import tiny_overrides

SEED_TAGS = [
    "stage0_pretrain/train_loss",
    "stage0_pretrain/val_char_acc",
    "stage1_warmup/train_l1",
    "stage1_warmup/val_psnr",
    "stage2_lcofl/train_lcofl",
    "stage2_lcofl/val_word_acc",
    "stage3_finetune/train_loss",
    "stage3_finetune/val_word_acc",
    "stage4_hard_mining/train_loss",
    "stage4_hard_mining/hard_mining_stats",
]


@pytest.fixture(scope="module")
def finished_run(synth_plates, tmp_path_factory):
    storage = tmp_path_factory.mktemp("runs")
    cfg = load_lpasrn_config("lp_asrn_tiny", tiny_overrides(synth_plates, storage, "full"))
    bundle = run_pipeline(cfg, LocalLauncher())
    return cfg, storage / "full", bundle


def test_every_stage_starts_from_the_previous_best(finished_run):
    cfg, run_dir, bundle = finished_run
    names = ["stage0-pretrain", "stage1-warmup", "stage2-lcofl", "stage3-finetune", "stage4-hard_mining"]
    assert sorted(p.name for p in run_dir.iterdir() if p.is_dir()) == names
    for index, name in enumerate(names):
        summary = json.loads((run_dir / name / "metrics.json").read_text())
        assert summary["finished"] and summary["stage"] == index
        assert (run_dir / name / "best/state.pt").is_file() and (run_dir / name / "last/state.pt").is_file()
        assert (run_dir / name / "config.resolved.yaml").is_file()
    # Stage 1 freezes the OCR: its OCR weights are exactly stage 0's best.
    stage0, stage1 = load_state(run_dir / names[0] / "best"), load_state(run_dir / names[1] / "best")
    assert all(torch.equal(stage0["ocr"][k], stage1["ocr"][k]) for k in stage0["ocr"])
    # Stage 2 starts from stage 1's generator and changes it; the bundle holds stage 4's best.
    stage2 = load_state(run_dir / names[2] / "best")
    assert any(not torch.equal(stage1["generator"][k], stage2["generator"][k]) for k in stage1["generator"])
    final = torch.load(bundle, weights_only=True)
    stage4 = load_state(run_dir / names[4] / "best")
    assert all(torch.equal(final["generator"][k], stage4["generator"][k]) for k in stage4["generator"])
    assert final["config"]["run"]["name"] == "full"
    assert final["trained"] == {"generator": [1, 2, 3, 4], "ocr": [0, 3], "history_complete": True}


def test_primary_metric_picks_the_best_checkpoint(finished_run):
    _, run_dir, _ = finished_run
    summary = json.loads((run_dir / "stage4-hard_mining/metrics.json").read_text())
    assert summary["primary_metric"] == "val_word_acc" and summary["mode"] == "max"
    best_epoch = summary["best"]["epoch"]
    assert summary["best"]["val_word_acc"] == max(row["val_word_acc"] for row in summary["history"])
    assert load_state(run_dir / "stage4-hard_mining/best")["epoch"] == best_epoch - 1
    assert "hard_mining_mean_accuracy" in summary["history"][-1]


def test_event_files_hold_the_seed_tags(finished_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, run_dir, _ = finished_run
    tags = set()
    for events in run_dir.glob("stage*/events"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"]) | set(accumulator.Tags().get("images", []))
        tags |= {tag for tag in accumulator.Tags().get("tensors", [])}
    missing = [tag for tag in SEED_TAGS if tag not in tags and not any(t.startswith(tag + "/") for t in tags)]
    assert not missing, f"missing tags {missing} in {sorted(tags)}"
    assert "stage2_lcofl/lr_sr_hr" in tags and "stage2_lcofl/confusion_matrix" in tags


def test_rerun_skips_finished_stages(finished_run, caplog):
    cfg, run_dir, _ = finished_run
    before = {p: p.stat().st_mtime_ns for p in run_dir.glob("stage*/best/state.pt")}
    with caplog.at_level("INFO"):
        run_pipeline(cfg, LocalLauncher())
    assert caplog.text.count("finished earlier, skipped") == 5
    assert before == {p: p.stat().st_mtime_ns for p in run_dir.glob("stage*/best/state.pt")}


def test_interrupted_stage_resumes_after_its_last_checkpoint(synth_plates, tmp_path, monkeypatch):
    cfg = load_lpasrn_config("lp_asrn_tiny", tiny_overrides(synth_plates, tmp_path, "crash", epochs=(3, 0, 0, 0, 0)))
    monkeypatch.setenv(FAIL_AT_EPOCH_ENV, "2")
    monkeypatch.setenv(FAIL_MARKER_ENV, str(tmp_path / "failed.txt"))
    with pytest.raises(RuntimeError, match="injected failure at epoch 2"):
        run_pipeline(cfg, LocalLauncher(), stages=[0])
    run_pipeline(cfg, LocalLauncher(), stages=[0])  # the same command again
    history = json.loads((tmp_path / "crash/stage0-pretrain/metrics.json").read_text())["history"]
    assert [(row["epoch"], row["attempt"]) for row in history] == [(1, 0), (2, 1), (3, 1)]


def test_a_bundle_of_stage_0_alone_warns_that_its_generator_never_trained(synth_plates, tmp_path, caplog):
    from lpasrn.inference.evaluation import infer

    cfg = load_lpasrn_config("lp_asrn_tiny", tiny_overrides(synth_plates, tmp_path, "ocr-only", epochs=(1, 1, 1, 1, 1)))
    bundle = run_pipeline(cfg, LocalLauncher(), stages=[0])
    assert torch.load(bundle, weights_only=True)["trained"] == {"generator": [], "ocr": [0], "history_complete": True}
    with caplog.at_level("WARNING", logger="lpasrn"):
        infer(bundle, [next(synth_plates.glob("*/*/*/lr-001.png"))])
    assert "the generator was never trained (generator trained in no stage; OCR in stage 0)" in caplog.text


def test_single_stage_needs_the_previous_stage(synth_plates, tmp_path, capsys):
    argv = [
        "train",
        "--config",
        "lp_asrn_tiny",
        "--local",
        "--stage",
        "2",
        "--set",
        *tiny_overrides(synth_plates, tmp_path, "lonely"),
    ]
    assert lpasrn_run(argv) == 2
    assert "stage 2 starts from stage 1's best checkpoint" in capsys.readouterr().err


def test_evaluate_and_infer_on_the_bundle(finished_run, synth_plates, tmp_path, capsys):
    _, _, bundle = finished_run
    assert (
        lpasrn_run(
            [
                "evaluate",
                "--checkpoint",
                str(bundle),
                "--data",
                str(synth_plates),
                "--split",
                "test",
                "--report",
                str(tmp_path / "report.json"),
                "--grid",
                str(tmp_path / "grid.png"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "SR (generator)" in out and "bicubic LR" in out and "HR (ceiling)" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["metrics"]) == {"sr", "bicubic", "hr"} and report["metrics"]["sr"]["psnr"] > 10
    assert (tmp_path / "grid.png").stat().st_size > 0
    image = next(synth_plates.glob("*/*/*/lr-001.png"))
    assert lpasrn_run(["infer", "--checkpoint", str(bundle), str(image), "--out", str(tmp_path / "sr")]) == 0
    assert "confidence" in capsys.readouterr().out and (tmp_path / "sr/lr-001_sr.png").is_file()


def test_the_slot_ocr_trains_through_every_stage_and_its_bundle_is_evaluated(synth_plates, tmp_path):
    """The CPU recipe's OCR (`ocr.model_type: slot_cnn`) goes through the same five stages, LCOFL included."""
    from lpasrn.inference.evaluation import evaluate

    overrides = tiny_overrides(synth_plates, tmp_path, "slot", epochs=(1, 1, 1, 1, 1)) + ["ocr.model_type=slot_cnn"]
    bundle = run_pipeline(load_lpasrn_config("lp_asrn_tiny", overrides), LocalLauncher())
    stage2 = json.loads((tmp_path / "slot/stage2-lcofl/metrics.json").read_text())["history"][-1]
    assert stage2["train_lcofl"] > 0 and 0 <= stage2["val_word_acc"] <= 1
    result = evaluate(bundle, synth_plates, constrain_layout=True)
    assert result.num_tracks == 2 and set(result.metrics) == {"sr", "bicubic", "hr"}
    assert torch.load(bundle, weights_only=True)["config"]["ocr"]["model_type"] == "slot_cnn"


def test_stages_can_train_on_plates_rendered_on_the_fly(synth_plates, tmp_path):
    """data.synthetic_train_samples: fresh plates each epoch; validation and hard mining keep the dataset."""
    overrides = tiny_overrides(synth_plates, tmp_path, "stream", epochs=(2, 1, 0, 0, 1)) + [
        "ocr.model_type=slot_cnn",
        "data.synthetic_train_samples=24",
    ]
    run_pipeline(load_lpasrn_config("lp_asrn_tiny", overrides), LocalLauncher())
    stage0 = json.loads((tmp_path / "stream/stage0-pretrain/metrics.json").read_text())
    assert stage0["finished"] and [row["epoch"] for row in stage0["history"]] == [1, 2]
    assert (
        "hard_mining_mean_accuracy"
        in json.loads((tmp_path / "stream/stage4-hard_mining/metrics.json").read_text())["history"][-1]
    )


def test_a_multi_frame_generator_trains_through_the_stages_and_is_evaluated(synth_plates, tmp_path):
    """model.generator_frames: the generator stages read stacks of frames; stage 0 and evaluation are unchanged."""
    from lpasrn.inference.evaluation import evaluate

    overrides = tiny_overrides(synth_plates, tmp_path, "multi", epochs=(1, 1, 1, 0, 1)) + [
        "ocr.model_type=slot_cnn",
        "model.generator_frames=3",
    ]
    bundle = run_pipeline(load_lpasrn_config("lp_asrn_tiny", overrides), LocalLauncher())
    stage2 = json.loads((tmp_path / "multi/stage2-lcofl/metrics.json").read_text())["history"][-1]
    assert stage2["train_lcofl"] > 0
    assert any(key.startswith("frame_fusion.") for key in torch.load(bundle, weights_only=True)["generator"])
    result = evaluate(bundle, synth_plates)
    assert result.num_images == 2 * 5 and 0 <= result.metrics["sr"]["word_acc"] <= 1
