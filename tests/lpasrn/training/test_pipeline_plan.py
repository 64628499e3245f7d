"""A pipeline is planned before it runs, so one launch (one Ray Train worker group) can train all its stages."""

from __future__ import annotations

import json

import pytest

from experiments.errors import UserError
from lpasrn.config import load_lpasrn_config
from lpasrn.training import engine
from lpasrn.training.pipeline import plan_pipeline
from lpasrn.training.stages import PlannedStage, ray_run_name


def _cfg(tmp_path):
    return load_lpasrn_config("lp_asrn_tiny", [f"run.storage_path={tmp_path}", "run.name=plan"])


def test_each_planned_stage_is_seeded_by_the_previous_stages_best(tmp_path):
    plan = plan_pipeline(_cfg(tmp_path))
    run_dir = tmp_path / "plan"
    assert [p.index for p in plan] == [0, 1, 2, 3, 4]
    assert plan[0].init_checkpoint is None and plan[2].stage_dir == str(run_dir / "stage2-lcofl")
    assert plan[3].init_checkpoint == str(run_dir / "stage2-lcofl" / "best" / "state.pt")


def test_a_later_stage_alone_needs_its_seed_or_an_init_checkpoint(tmp_path):
    with pytest.raises(UserError, match="run stage 1 first"):
        plan_pipeline(_cfg(tmp_path), [2])
    seed = tmp_path / "seed.pt"
    seed.write_bytes(b"")
    assert plan_pipeline(_cfg(tmp_path), [2], str(seed)) == [
        PlannedStage(2, str(tmp_path / "plan" / "stage2-lcofl"), str(seed))
    ]


def test_the_ray_run_is_named_after_the_stages_it_trains(tmp_path):
    plan = plan_pipeline(_cfg(tmp_path))
    assert ray_run_name("plan", plan[1:2]) == "plan-stage1"
    assert ray_run_name("plan", plan[2:]) == "plan-stages2-4"


def test_a_restarted_launch_skips_the_stages_it_already_finished(tmp_path, monkeypatch):
    plan = plan_pipeline(_cfg(tmp_path))
    done = tmp_path / "plan" / "stage0-pretrain"
    (done / "best").mkdir(parents=True)
    (done / "best" / "state.pt").write_bytes(b"")
    (done / "metrics.json").write_text(json.dumps({"finished": True}))
    trained = []
    monkeypatch.setattr(
        engine, "train_stage", lambda cfg, index, stage_dir, session, seed: trained.append((index, session))
    )
    engine.train_stages(_cfg(tmp_path), plan[:2], lambda planned: f"session of {planned.index}")
    assert trained == [(1, "session of 1")]
