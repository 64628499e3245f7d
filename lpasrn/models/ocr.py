"""Weights for any registered OCR (`lpasrn.models.registry`): PARSeq sizes and the slot CNNs.

They share one interface, `forward` logits in the tokenizer's layout, `read`, `training_loss`, so whichever an
experiment names trains and reads the same way; only where their weights come from differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, cast

from torch import Tensor, nn

from lpasrn.models.checkpoints import load_checked_state_dict, read_checkpoint, resolve_pretrained
from lpasrn.models.parseq import PARSEQ_SIZES, OCRResult, PARSeq, load_parseq_weights
from lpasrn.models.tokenizer import Tokenizer


class PlateOCR(Protocol):
    """The interface every registered OCR module has besides nn.Module's own (PARSeq, PlateSlotOCR)."""

    tokenizer: Tokenizer
    img_size: tuple[int, int]

    @property
    def charset(self) -> str: ...

    def training_loss(self, images: Tensor, targets: Sequence[str]) -> Tensor: ...

    def read(self, images: Tensor, layout_constrained: str | Sequence[str] | None = None) -> OCRResult: ...


def plate_ocr(ocr: nn.Module) -> PlateOCR:
    """A registered OCR seen through its interface. Only a cast: torch types every attribute that a module does not
    declare as `Tensor | Module` (its `__getattr__`), though these are plain attributes and methods."""
    return cast(PlateOCR, ocr)


def load_ocr_weights(model: nn.Module, model_type: str, path_or_ref: str) -> None:
    """PARSeq takes the authors' checkpoints too; every model takes a state dict saved from its own kind."""
    if model_type in PARSEQ_SIZES:
        assert isinstance(model, PARSeq)  # the registry builds every PARSEQ_SIZES name as a PARSeq
        load_parseq_weights(model, path_or_ref)
        return
    checkpoint = read_checkpoint(resolve_pretrained(path_or_ref))
    load_checked_state_dict(model, checkpoint.state_dict, path_or_ref)
