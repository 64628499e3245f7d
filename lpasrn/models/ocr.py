"""The OCR registry: every recogniser an experiment can name in `ocr.model_type`, and one factory for them.

PARSeq (the authors' sizes, for GPU runs with their published weights) and the slot CNN (trains from scratch in
CPU minutes) share one interface: `forward` logits in the tokenizer's layout, `read`, `training_loss`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from torch import nn

from lpasrn.config import OCRConfig
from lpasrn.models.checkpoints import load_checked_state_dict, read_checkpoint, resolve_pretrained
from lpasrn.models.parseq import PARSEQ_SIZES, create_parseq, load_parseq_weights
from lpasrn.models.slot_ocr import SLOT_OCR_SIZES, create_slot_ocr

logger = logging.getLogger(__name__)

OCR_FACTORIES: dict[str, Callable[..., nn.Module]] = {
    **{name: (lambda name=name, **kw: create_parseq(name, **kw)) for name in PARSEQ_SIZES},
    **{name: (lambda name=name, **kw: create_slot_ocr(name, **kw)) for name in SLOT_OCR_SIZES},
}


def list_ocr_models() -> list[str]:
    return sorted(OCR_FACTORIES)


def create_ocr(name: str, **overrides) -> nn.Module:
    """A randomly initialised OCR of a registered kind."""
    if name not in OCR_FACTORIES:
        raise ValueError(f"unknown OCR {name!r} (expected one of {list_ocr_models()})")
    return OCR_FACTORIES[name](**overrides)


def load_ocr_weights(model: nn.Module, model_type: str, path_or_ref: str) -> None:
    """PARSeq takes the authors' checkpoints too; every model takes a state dict saved from its own kind."""
    if model_type in PARSEQ_SIZES:
        load_parseq_weights(model, path_or_ref)
        return
    checkpoint = read_checkpoint(resolve_pretrained(path_or_ref))
    load_checked_state_dict(model, checkpoint.state_dict, path_or_ref)


def build_ocr(cfg: OCRConfig, **overrides) -> nn.Module:
    """The OCR an experiment's `ocr:` block describes, with its pretrained weights when it names any."""
    model = create_ocr(cfg.model_type, **overrides)
    if cfg.pretrained_path is None:
        logger.info("ocr.pretrained_path is not set: the %s OCR starts from random weights", cfg.model_type)
    else:
        load_ocr_weights(model, cfg.model_type, cfg.pretrained_path)
        logger.info("loaded %s OCR weights from %s", cfg.model_type, cfg.pretrained_path)
    return model
