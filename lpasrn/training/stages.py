"""The five progressive stages: what each trains, which losses it uses and how its best checkpoint is chosen."""
from __future__ import annotations

from dataclasses import dataclass

from lpasrn.config import LpasrnConfig, StageConfig

# Stages 0 and 1 have no recognition target on SR images yet, so they keep the lowest validation loss;
# stage 2 keeps the best recognition rate, stages 3 and 4 the best word accuracy (the same number).
_PRIMARY_METRIC = {0: ("val_loss", "min"), 1: ("val_loss", "min"), 2: ("val_word_acc", "max"),
                   3: ("val_word_acc", "max"), 4: ("val_word_acc", "max")}


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


def stage_table(cfg: LpasrnConfig) -> list[StageSpec]:
    return [StageSpec(index, stage) for index, stage in enumerate(cfg.stages)]


def ray_run_name(run_name: str, stage: StageSpec) -> str:
    """Each stage is one Ray Train run named `<run>-stage<k>`."""
    return f"{run_name}-stage{stage.index}"
