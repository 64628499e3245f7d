"""The recorder keeps the history and the best epoch by the stage config's primary metric, and writes the stage
folder that resuming and the next stage read."""

from __future__ import annotations

import json

import torch

from lpasrn.checkpoint import load_state
from lpasrn.config import LpasrnConfig, load_lpasrn_config
from lpasrn.training.recorder import METRICS_FILE, StageRecorder, stage_finished
from lpasrn.training.stages import stage_table


def epoch(step: int, **values: float) -> dict[str, float]:
    return {"epoch": step, "attempt": 0, **values}


def test_best_follows_the_configured_metric_and_mode_and_last_is_every_epoch(tmp_path):
    cfg = load_lpasrn_config("lp_asrn_tiny", ["stages.1.primary_metric=val_psnr"])
    stage = stage_table(cfg)[1]
    recorder = StageRecorder(stage, tmp_path / "stage1", is_main=True, world_size=1)
    recorder.start(cfg)
    rows = [
        epoch(1, val_loss=0.5, val_psnr=20.0),
        epoch(2, val_loss=0.4, val_psnr=19.0),
        epoch(3, val_loss=0.6, val_psnr=21.0),
    ]
    bests = [recorder.record(row, lambda row=row: {"epoch": row["epoch"], "w": torch.ones(1)}) for row in rows]
    assert bests == [True, False, True] and recorder.best == 21.0
    assert (
        load_state(tmp_path / "stage1" / "best")["epoch"] == 3
        and load_state(tmp_path / "stage1" / "last")["epoch"] == 3
    )
    summary = json.loads((tmp_path / "stage1" / METRICS_FILE).read_text())
    assert summary["primary_metric"] == "val_psnr" and summary["mode"] == "max" and summary["best"]["epoch"] == 3
    assert not summary["finished"] and not stage_finished(tmp_path / "stage1")
    recorder.finish()
    recorder.close()
    assert (
        stage_finished(tmp_path / "stage1")
        and len(json.loads((tmp_path / "stage1" / METRICS_FILE).read_text())["history"]) == 3
    )


def test_other_ranks_keep_the_history_but_write_nothing(tmp_path):
    stage = stage_table(LpasrnConfig())[0]
    recorder = StageRecorder(stage, tmp_path / "stage0", is_main=False, world_size=2)
    recorder.start(LpasrnConfig())
    assert recorder.record(epoch(1, val_loss=1.0), lambda: {"never": "called"}) and recorder.best == 1.0
    recorder.finish()
    recorder.close()
    assert not (tmp_path / "stage0").exists() and len(recorder.history) == 1
