"""The five progressive stages: what each trains, which losses it uses and how its best checkpoint is chosen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lpasrn.config import LpasrnConfig, StageConfig

# Stages 0 and 1 have no recognition target on SR images yet, so they keep the lowest validation loss;
# stage 2 keeps the best recognition rate, stages 3 and 4 the best word accuracy (the same number).
_PRIMARY_METRIC = {
    0: ("val_loss", "min"),
    1: ("val_loss", "min"),
    2: ("val_word_acc", "max"),
    3: ("val_word_acc", "max"),
    4: ("val_word_acc", "max"),
}


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
    def primary_metric(self) -> tuple[str, str]:
        return _PRIMARY_METRIC[self.index]

    def is_better(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value < best if self.primary_metric[1] == "min" else value > best


TRAINED_KEY = "trained"  # checkpoint and bundle key of the record below


def trained_record(seed_record: dict[str, Any] | None, seeded: bool, stage: StageSpec, trained: bool) -> dict[str, Any]:
    """Which stages trained a checkpoint's generator and OCR: the seed's record plus this stage once it has
    trained an epoch. The record travels from seed to seed into the bundle, so `evaluate` can tell that a bundle
    of `--stage 0` alone holds an untrained generator. `history_complete` is False when a seed did not say
    (a checkpoint from before the record, or an --init-checkpoint from elsewhere)."""
    record: dict[str, Any]
    if seed_record is not None:
        record = {
            "generator": list(seed_record["generator"]),
            "ocr": list(seed_record["ocr"]),
            "history_complete": bool(seed_record["history_complete"]),
        }
    else:
        record = {"generator": [], "ocr": [], "history_complete": not seeded}
    if trained:
        for part, trains in (("generator", stage.trains_generator), ("ocr", stage.trains_ocr)):
            if trains and stage.index not in record[part]:
                record[part].append(stage.index)
    return record


def describe_trained(record: dict[str, Any] | None) -> str:
    """'generator trained in stages 1, 2; OCR in stage 0' (or what is known of it)."""
    if record is None:
        return "which stages trained it is not recorded"

    def stages(indices: list[int]) -> str:
        if not indices:
            return "no stage" if record["history_complete"] else "no recorded stage"
        return f"stage{'s' if len(indices) > 1 else ''} {', '.join(map(str, indices))}"

    return f"generator trained in {stages(record['generator'])}; OCR in {stages(record['ocr'])}"


def stage_table(cfg: LpasrnConfig) -> list[StageSpec]:
    return [StageSpec(index, stage) for index, stage in enumerate(cfg.stages)]


@dataclass(frozen=True)
class PlannedStage:
    """A stage a launcher is asked to train: where it writes, and the checkpoint that seeds it (the previous
    stage's best, known before that stage runs, so a whole pipeline can be handed to one worker group)."""

    index: int
    stage_dir: str
    seed_checkpoint: str | None


def ray_run_name(run_name: str, plan: list[PlannedStage]) -> str:
    """One Ray Train run per launch: `<run>-stage<k>` for one stage, `<run>-stages<a>-<b>` for several."""
    first, last = plan[0].index, plan[-1].index
    return f"{run_name}-stage{first}" if first == last else f"{run_name}-stages{first}-{last}"
