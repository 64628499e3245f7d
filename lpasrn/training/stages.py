"""The five progressive stages: what each trains, which losses it uses and how its best checkpoint is chosen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lpasrn.config import LpasrnConfig, StageConfig


@dataclass(frozen=True)
class StageSpec:
    index: int
    cfg: StageConfig

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def tag_prefix(self) -> str:
        """TensorBoard tag prefix, as in the seed: `stage2_lcofl`."""
        return f"stage{self.index}_{self.name}"

    @property
    def dir_name(self) -> str:
        return f"stage{self.index}-{self.name}"

    @property
    def trains_ocr_only(self) -> bool:
        return self.cfg.loss_components == ["ocr"]

    @property
    def trains_generator(self) -> bool:
        return not self.trains_ocr_only

    @property
    def trains_ocr(self) -> bool:
        return not self.cfg.freeze_ocr

    @property
    def uses_lcofl(self) -> bool:
        return "lcofl" in self.cfg.loss_components

    @property
    def uses_l1(self) -> bool:
        return "l1" in self.cfg.loss_components

    @property
    def hard_mining(self) -> bool:
        return self.cfg.hard_mining is not None

    @property
    def primary_metric(self) -> str:
        """The validation metric that chooses `best/` (the stage config's `primary_metric`)."""
        return self.cfg.primary_metric

    @property
    def metric_mode(self) -> str:
        return self.cfg.metric_mode

    def is_better(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value < best if self.metric_mode == "min" else value > best


def trained_record(
    init_record: dict[str, Any] | None, initialised: bool, stage: StageSpec, trained: bool
) -> dict[str, Any]:
    """Which stages trained a checkpoint's generator and OCR: the initial checkpoint's record plus this stage once
    it has trained an epoch. The record travels from stage to stage into the bundle, so `evaluate` can tell that a
    bundle of `--stage 0` alone holds an untrained generator. `history_complete` is False when an initial
    checkpoint did not say (one from before the record, or an --init-checkpoint from elsewhere)."""
    record: dict[str, Any]
    if init_record is not None:
        record = {
            "generator": list(init_record["generator"]),
            "ocr": list(init_record["ocr"]),
            "history_complete": bool(init_record["history_complete"]),
        }
    else:
        record = {"generator": [], "ocr": [], "history_complete": not initialised}
    if trained:
        for part, trains in (("generator", stage.trains_generator), ("ocr", stage.trains_ocr)):
            if trains and stage.index not in record[part]:
                record[part].append(stage.index)
    return record


def stage_table(cfg: LpasrnConfig) -> list[StageSpec]:
    return [StageSpec(index, stage) for index, stage in enumerate(cfg.stages)]


@dataclass(frozen=True)
class PlannedStage:
    """A stage a launcher is asked to train: where it writes, and the checkpoint it starts from (the previous
    stage's best, known before that stage runs, so a whole pipeline can be handed to one worker group)."""

    index: int
    stage_dir: str
    init_checkpoint: str | None


def ray_run_name(run_name: str, plan: list[PlannedStage]) -> str:
    """One Ray Train run per launch: `<run>-stage<k>` for one stage, `<run>-stages<a>-<b>` for several."""
    first, last = plan[0].index, plan[-1].index
    return f"{run_name}-stage{first}" if first == last else f"{run_name}-stages{first}-{last}"
