"""Typed configuration of an lpasrn experiment (data, model, OCR, loss, the five stages, the Ray run).

Key names follow the LP-ASRN seed (`model.swinir_embed_dim`, `loss.lambda_lcofl`, stage blocks with `name,
epochs, lr, loss_components, freeze_ocr, update_confusion, hard_mining`) so its users feel at home.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from experiments import paths
from experiments.config import StrictModel, load_config

StageName = Literal["pretrain", "warmup", "lcofl", "finetune", "hard_mining"]
LossComponent = Literal["ocr", "l1", "lcofl"]
# What validation reports each epoch (PSNR and SSIM only where a stage produces SR images)
PrimaryMetric = Literal["val_loss", "val_word_acc", "val_char_acc", "val_track_acc", "val_psnr", "val_ssim"]
STAGE_ORDER: tuple[str, ...] = ("pretrain", "warmup", "lcofl", "finetune", "hard_mining")


class DataConfig(StrictModel):
    """Where the plates are and how they are cut into splits and resized."""

    # A folder of track folders, or a packed dataset (`lpasrn pack`): a folder with its manifest.json, or an
    # s3:// / gs:// URI, which training streams with Ray Data (`--local`: read with pyarrow).
    root: Path | str = Path("data/plates")
    split_file: Path | None = None
    split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_seed: int = 0
    lr_size: tuple[int, int] = (16, 48)
    scale: Literal[2, 3, 4] = 2
    batch_size: int = Field(32, ge=1)
    # DataLoader worker processes; null: none for a split decoded into memory (a batch is one gather there, and a
    # worker would only add pickling it across processes), 2 where frames are decoded from files or rendered.
    loader_workers: int | None = Field(None, ge=0)
    # Decode and resize every frame pair once per stage and train from memory (uint8, 11.5 KB a pair at 16x48 x2)
    # instead of decoding each PNG every epoch; turn off for a dataset larger than the workers' memory.
    cache_decoded: bool = True
    skip_bad: bool = False
    # > 0: every epoch trains on this many freshly rendered plates (lpasrn.data.synthetic_stream) instead of the
    # dataset's train split; validation, the best checkpoint and the hard_mining stage still use the dataset.
    synthetic_train_samples: int = Field(0, ge=0)
    synthetic_seed: int = 1000  # the stream's plates; keep it apart from the seed that made the dataset
    synthetic_style: Literal["standard", "varied"] = "standard"  # `lpasrn synth --style` of the streamed plates

    @field_validator("root", mode="before")
    @classmethod
    def _uri_or_path(cls, value: object) -> object:
        return paths.path_or_uri(value)

    @field_validator("lr_size")
    @classmethod
    def _lr_size_positive(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 4:
            raise ValueError("height and width must be at least 4 pixels")
        return value

    @field_validator("split_ratios")
    @classmethod
    def _ratios_sum_to_one(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(value) < 0 or abs(sum(value) - 1.0) > 1e-6 or value[0] <= 0:
            raise ValueError("train/val/test ratios must be non-negative, train > 0, and sum to 1")
        return value

    @property
    def hr_size(self) -> tuple[int, int]:
        return self.lr_size[0] * self.scale, self.lr_size[1] * self.scale


class ModelConfig(StrictModel):
    """SwinIR generator with Character Pyramid Attention (seed defaults = the maximum configuration)."""

    swinir_embed_dim: int = Field(144, ge=8)
    swinir_num_rstb: int = Field(8, ge=1)
    swinir_num_heads: int = Field(8, ge=1)
    swinir_window_size: int = Field(6, ge=2)
    swinir_num_blocks_per_rstb: int = Field(3, ge=1)
    swinir_mlp_ratio: float = Field(6.0, gt=0)
    use_pyramid_attention: bool = True
    pyramid_layout: Literal["brazilian", "mercosur"] = "brazilian"
    # Frames of a track the generator reads together (reference first); 1 = one frame at a time. With more, every
    # sample stacks its frame with the track's next ones (cycling when a track has fewer) for `FrameFusion`.
    generator_frames: int = Field(1, ge=1, le=16)

    @field_validator("pyramid_layout", mode="before")
    @classmethod
    def _accept_seed_spelling(cls, value: object) -> object:
        # The seed spells it "mercocur"; accept it and the dataset's capitalised names.
        if isinstance(value, str):
            value = value.strip().lower()
            return "mercosur" if value == "mercocur" else value
        return value

    @model_validator(mode="after")
    def _heads_divide_embedding(self) -> ModelConfig:
        if self.swinir_embed_dim % self.swinir_num_heads:
            raise ValueError(
                f"swinir_embed_dim ({self.swinir_embed_dim}) must be divisible by "
                f"swinir_num_heads ({self.swinir_num_heads})"
            )
        return self


class OCRConfig(StrictModel):
    """The recogniser (`lpasrn.models.ocr`): PARSeq sizes, or the slot CNN that trains from scratch on a CPU.
    `pretrained_path`: local .pt/.ckpt/.safetensors or `hf://owner/repo/file`."""

    model_type: Literal["parseq", "parseq_tiny", "parseq_micro", "slot_cnn", "slot_cnn_wide"] = "parseq"
    pretrained_path: str | None = None
    freeze_ocr: bool = True


class LossConfig(StrictModel):
    """LCOFL weights (seed names) and how the confusion matrix turns into per-character weights."""

    lambda_lcofl: float = Field(1.0, ge=0)
    lambda_layout: float = Field(0.5, ge=0)
    lambda_ssim: float = Field(0.2, ge=0)
    confusion_alpha: float = Field(2.0, ge=0)
    confusion_threshold: float = Field(0.05, ge=0, le=1)
    confusion_max_weight: float = Field(5.0, ge=1)


class TrainConfig(StrictModel):
    """Optimisation details shared by every stage (AdamW, warm-up + cosine, clipping) and the speed switches that
    `bench/gpu.py` measures (`lpasrn.training.speed`)."""

    weight_decay: float = Field(0.01, ge=0)
    warmup_fraction: float = Field(0.05, ge=0, lt=1)
    grad_clip_norm: float = Field(1.0, gt=0)
    # bfloat16 autocast. null: on a GPU only (on most CPUs it is slower than float32); true/false: everywhere/never.
    bf16: bool | None = None
    channels_last: bool = False  # NHWC memory format for the convolutions (models and input batches)
    compile: bool = False  # torch.compile of the generator's RSTBs and the OCR's encoder (their tensor-only parts)
    image_log_every: int = Field(5, ge=1)
    progress_every_s: float = Field(30.0, gt=0)  # a progress line this often where no bar can be drawn


class HardMiningConfig(StrictModel):
    difficulty_alpha: float = Field(2.0, ge=0)
    reweight_interval: int = Field(5, ge=1)


class StageConfig(StrictModel):
    """One progressive stage; the list index is the stage number (0..4)."""

    name: StageName
    epochs: int = Field(ge=0)
    lr: float = Field(gt=0)
    loss_components: list[LossComponent] = Field(min_length=1)
    freeze_ocr: bool
    update_confusion: bool = False
    hard_mining: HardMiningConfig | None = None
    # What the OCR of an `ocr` stage learns to read: HR frames (LP-ASRN's stage 0), or the LR frames themselves,
    # which makes the OCR-only baseline that super-resolution has to beat (`lpasrn evaluate --lr-ocr`).
    ocr_input: Literal["hr", "lr"] = "hr"
    # The validation metric that picks `best/` (the checkpoint the next stage starts from). Left out: the word
    # accuracy (recognition rate) of stages whose LCOFL reads SR plates, else the validation loss (stages 0 and 1
    # have no recognition target on SR images yet).
    primary_metric: PrimaryMetric = "val_loss"

    @model_validator(mode="before")
    @classmethod
    def _default_primary_metric(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("primary_metric") is None:
            data = {
                **data,
                "primary_metric": "val_word_acc" if "lcofl" in (data.get("loss_components") or []) else "val_loss",
            }
        return data

    @property
    def metric_mode(self) -> Literal["min", "max"]:
        """A loss is best at its lowest, an accuracy, PSNR or SSIM at its highest."""
        return "min" if self.primary_metric == "val_loss" else "max"

    @model_validator(mode="after")
    def _consistent(self) -> StageConfig:
        if "ocr" in self.loss_components and self.freeze_ocr:
            raise ValueError("loss component 'ocr' trains the OCR, so freeze_ocr must be false")
        if "ocr" in self.loss_components and len(self.loss_components) > 1:
            raise ValueError("'ocr' (PARSeq pretraining) cannot be combined with generator losses")
        if self.update_confusion and "lcofl" not in self.loss_components:
            raise ValueError("update_confusion needs the 'lcofl' loss component")
        if self.hard_mining is not None and self.name != "hard_mining":
            raise ValueError("hard_mining settings only apply to the hard_mining stage")
        if self.ocr_input != "hr" and self.loss_components != ["ocr"]:
            raise ValueError("ocr_input applies to the OCR stage (loss_components: [ocr]) only")
        if self.primary_metric in ("val_psnr", "val_ssim") and self.loss_components == ["ocr"]:
            raise ValueError(f"primary_metric {self.primary_metric}: the OCR stage makes no SR images to score")
        return self


def default_stage_table() -> list[StageConfig]:
    """The seed's five stages with its epochs and learning rates."""
    return [
        StageConfig(name="pretrain", epochs=50, lr=5e-4, loss_components=["ocr"], freeze_ocr=False),
        StageConfig(name="warmup", epochs=30, lr=1e-4, loss_components=["l1"], freeze_ocr=True),
        StageConfig(
            name="lcofl", epochs=200, lr=2e-4, loss_components=["l1", "lcofl"], freeze_ocr=True, update_confusion=True
        ),
        StageConfig(name="finetune", epochs=100, lr=1e-5, loss_components=["l1", "lcofl"], freeze_ocr=False),
        StageConfig(
            name="hard_mining",
            epochs=50,
            lr=5e-6,
            loss_components=["l1", "lcofl"],
            freeze_ocr=True,
            hard_mining=HardMiningConfig(),
        ),
    ]


class RunConfig(StrictModel):
    """Where and how a Ray run executes."""

    name: str = Field("lp_asrn", pattern=r"^[A-Za-z0-9_.-]+$")
    storage_path: str = "runs"
    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: int = Field(1, ge=1)  # torch threads per worker follow it
    max_failures: int = Field(0, ge=-1)
    # A local storage_path is a mount every node shares (multi-node clusters need it, or an s3:// / gs:// URI).
    shared_storage: bool = False
    seed: int = 0

    def storage_uri(self) -> str:
        """Absolute local path or a URI (s3://, gs://, ...), as Ray's RunConfig wants it."""
        return paths.output_location(self.storage_path, "run.storage_path")


class LpasrnConfig(StrictModel):
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    ocr: OCRConfig = OCRConfig()
    loss: LossConfig = LossConfig()
    train: TrainConfig = TrainConfig()
    stages: list[StageConfig] = Field(default_factory=default_stage_table)
    run: RunConfig = RunConfig()

    def with_absolute_paths(self) -> LpasrnConfig:
        """Every path resolved as `experiments.paths` does for both halves, so Ray workers (which start in their
        own folder) find the same files, and a Ray job never writes into its temporary working-dir copy."""
        data = self.data.model_copy(
            update={
                "root": paths.input_location(self.data.root)
                if paths.is_uri(self.data.root)
                else paths.input_path(self.data.root),
                "split_file": paths.input_path(self.data.split_file) if self.data.split_file else None,
            }
        )
        pretrained = self.ocr.pretrained_path
        ocr = self.ocr.model_copy(update={"pretrained_path": pretrained and paths.input_location(pretrained)})
        run = self.run.model_copy(update={"storage_path": self.run.storage_uri()})
        return self.model_copy(update={"data": data, "ocr": ocr, "run": run})

    @field_validator("stages")
    @classmethod
    def _five_stages_in_order(cls, stages: list[StageConfig]) -> list[StageConfig]:
        names = tuple(stage.name for stage in stages)
        if names != STAGE_ORDER:
            raise ValueError(f"expected the five stages in order {list(STAGE_ORDER)}, got {list(names)}")
        return stages


def load_lpasrn_config(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> LpasrnConfig:
    return load_config(LpasrnConfig, path, overrides, kind="lpasrn")
