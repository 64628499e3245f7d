"""The progressive pipeline: stages in order, each starting from the previous stage's best checkpoint.

A stage whose folder says it finished is skipped, so running the same command again after a crash resumes
the pipeline; the interrupted stage itself resumes from its last checkpoint. How the stages run (one Ray Train
worker group for the whole pipeline, or a local loop) is the launcher's business. The run folder is a local path
(or an NFS mount) or an object-store URI (s3://, gs://); locations are kept as strings so a URI's `//` survives.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Protocol

from experiments import storage
from experiments.config import RESOLVED_CONFIG_NAME, config_to_yaml
from experiments.errors import UserError
from lpasrn.checkpoint import STATE_FILE, TRAINED_KEY, describe_trained, load_state
from lpasrn.config import LpasrnConfig
from lpasrn.inference.bundle import BUNDLE_NAME, export_bundle
from lpasrn.training.engine import train_stages
from lpasrn.training.recorder import stage_finished
from lpasrn.training.session import LocalSession
from lpasrn.training.stages import PlannedStage, StageSpec, stage_table

logger = logging.getLogger(__name__)


class StageLauncher(Protocol):
    def run_stages(self, cfg: LpasrnConfig, plan: list[PlannedStage]) -> None:
        """Train the planned stages in order; one launch per pipeline, so start-up is paid once."""


class LocalLauncher:
    """`--local`: the same training function in this process, no cluster (one GPU, a CPU or a debugger)."""

    def run_stages(self, cfg: LpasrnConfig, plan: list[PlannedStage]) -> None:
        train_stages(
            cfg,
            plan,
            lambda planned: LocalSession(planned.stage_dir, use_gpu=cfg.run.use_gpu, show_progress=sys.stderr.isatty()),
        )


def run_dir_of(cfg: LpasrnConfig) -> str:
    return storage.join(cfg.run.storage_uri(), cfg.run.name)


def best_checkpoint(run_dir: str, stage: StageSpec) -> str:
    return storage.join(run_dir, stage.dir_name, "best", STATE_FILE)


def _first_init_checkpoint(cfg: LpasrnConfig, run_dir: str, first: int, init_checkpoint: str | None) -> str | None:
    if init_checkpoint is not None:
        if not storage.exists(init_checkpoint):
            raise UserError(f"--init-checkpoint {init_checkpoint}: file not found")
        return init_checkpoint
    if first == 0:
        return None
    previous = stage_table(cfg)[first - 1]
    path = best_checkpoint(run_dir, previous)
    if not storage.exists(path):
        raise UserError(
            f"stage {first} starts from stage {first - 1}'s best checkpoint, but {path} does not exist: "
            f"run stage {first - 1} first (same --name) or pass --init-checkpoint"
        )
    return path


def _save_config(cfg: LpasrnConfig, run_dir: str) -> None:
    """Write the run's resolved config, warning first when an earlier run of the same name used another one."""
    path, text = storage.join(run_dir, RESOLVED_CONFIG_NAME), config_to_yaml(cfg)
    if storage.exists(path) and storage.read_bytes(path).decode() != text:
        logger.warning("%s differs from this run's config: finished stages are kept as they are", path)
    storage.write_bytes(path, text.encode())


def plan_pipeline(
    cfg: LpasrnConfig, stages: Sequence[int] | None = None, init_checkpoint: str | None = None
) -> list[PlannedStage]:
    """`stages` (default all five) with their folders and initial checkpoints: each the previous stage's best."""
    run_dir = run_dir_of(cfg)
    indices = list(stages) if stages is not None else list(range(len(cfg.stages)))
    start_from = _first_init_checkpoint(cfg, run_dir, indices[0], init_checkpoint)
    table, plan = stage_table(cfg), []
    for index in indices:
        stage = table[index]
        plan.append(PlannedStage(index, storage.join(run_dir, stage.dir_name), start_from))
        start_from = best_checkpoint(run_dir, stage)
    return plan


def run_pipeline(
    cfg: LpasrnConfig, launcher: StageLauncher, stages: Sequence[int] | None = None, init_checkpoint: str | None = None
) -> str:
    """Run `stages` (default all five) in order in one launch and write the inference bundle of the last one."""
    run_dir = run_dir_of(cfg)
    _save_config(cfg, run_dir)
    plan, table = plan_pipeline(cfg, stages, init_checkpoint), stage_table(cfg)
    pending = []
    for planned in plan:
        stage = table[planned.index]
        if stage_finished(planned.stage_dir):
            logger.info(
                "%s: finished earlier, skipped (delete %s to train it again)", stage.dir_name, planned.stage_dir
            )
        else:
            logger.info(
                "%s: %d epochs, lr %g, losses %s, OCR %s%s",
                stage.dir_name,
                stage.cfg.epochs,
                stage.cfg.lr,
                "+".join(stage.cfg.loss_components),
                "frozen" if stage.cfg.freeze_ocr else "trained",
                f", starting from {planned.init_checkpoint}" if planned.init_checkpoint else "",
            )
            pending.append(planned)
    if pending:
        launcher.run_stages(cfg, pending)
    for planned in pending:
        if not stage_finished(planned.stage_dir):
            raise RuntimeError(f"{table[planned.index].dir_name} ended without finishing; see the log above")
    state = load_state(best_checkpoint(run_dir, table[plan[-1].index]))
    bundle = export_bundle(state, cfg, storage.join(run_dir, BUNDLE_NAME))
    logger.info("inference bundle: %s (%s)", bundle, describe_trained(state.get(TRAINED_KEY)))
    return bundle
