"""Fine-tune and retrain settings and the checks on them, free of TensorFlow: a bad flag fails in a second.

`fine-tune` mixes the original sources (`data_ratio` of the draws) with augmented data (`augmented_ratio`);
`retrain` adds a folder of bad predictions to the sources at a heavy weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from digits.config import DataSource, DigitsConfig
from experiments.errors import UserError

STRATEGIES = ("full", "last_layer", "feature_extractor")
FINETUNED_SUFFIX = "_finetuned"
RETRAIN_LEARNING_RATE = 1e-4


@dataclass(frozen=True)
class FineTunePlan:
    """The `fine-tune` flags of the original `fine-tune.py`, with its defaults."""

    strategy: str = "full"
    data_ratio: float = 0.1
    augmented_ratio: float = 0.9
    learning_rate_multiplier: float = 0.5
    augmented_dir: Path | None = None

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise UserError(f"--strategy {self.strategy!r}: expected one of {', '.join(STRATEGIES)}")
        for flag, value in (("--data_ratio", self.data_ratio), ("--augmented_ratio", self.augmented_ratio)):
            if not 0 < value <= 1:
                raise UserError(f"{flag} {value}: must be in (0, 1] (share of the fine-tuning mix)")
        if self.learning_rate_multiplier <= 0:
            raise UserError(f"--learning_rate_multiplier {self.learning_rate_multiplier}: must be positive")
        if self.augmented_dir is not None and not Path(self.augmented_dir).is_dir():
            raise UserError(f"{self.augmented_dir}: --augmented_dir folder not found")


def check_learning_rate(learning_rate: float) -> None:
    if learning_rate <= 0:
        raise UserError(f"--learning_rate {learning_rate}: must be positive")


def require_model_file(path: str | Path) -> Path:
    """The model path, checked before TensorFlow is imported (a missing file fails in a second)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: model file not found (expected <export_dir>/<group>/<model>/best_model.keras)")
    return path


def scaled_sources(sources: list[DataSource], share: float) -> list[DataSource]:
    """The sources with their relative weights kept and their total set to `share`."""
    total = sum(source.weight for source in sources)
    return [DataSource(path=source.path, weight=share * source.weight / total) for source in sources]


def with_bad_source(cfg: DigitsConfig, bad_dir: str | Path, bad_weight: float) -> DigitsConfig:
    """cfg whose data_sources hold `bad_dir` at `bad_weight`: appended, or its weight overridden if listed."""
    if bad_weight <= 0:
        raise UserError(f"--bad_weight {bad_weight}: must be positive")
    bad_dir = Path(bad_dir)
    if not bad_dir.is_dir():
        raise UserError(f"{bad_dir}: --bad_images_dir folder not found")
    target = bad_dir.resolve()
    sources = [source for source in cfg.data_sources if Path(source.path).resolve() != target]
    sources.append(DataSource(path=bad_dir, weight=bad_weight))
    return cfg.model_copy(update={"data_sources": sources})
