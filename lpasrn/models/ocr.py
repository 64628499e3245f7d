"""Weights for any registered OCR (`lpasrn.models.registry`): PARSeq sizes and the slot CNNs.

They share one interface, `forward` logits in the tokenizer's layout, `read`, `training_loss`, so whichever an
experiment names trains and reads the same way; only where their weights come from differs.
"""

from __future__ import annotations

from torch import nn

from lpasrn.models.checkpoints import load_checked_state_dict, read_checkpoint, resolve_pretrained
from lpasrn.models.parseq import PARSEQ_SIZES, load_parseq_weights


def load_ocr_weights(model: nn.Module, model_type: str, path_or_ref: str) -> None:
    """PARSeq takes the authors' checkpoints too; every model takes a state dict saved from its own kind."""
    if model_type in PARSEQ_SIZES:
        load_parseq_weights(model, path_or_ref)
        return
    checkpoint = read_checkpoint(resolve_pretrained(path_or_ref))
    load_checked_state_dict(model, checkpoint.state_dict, path_or_ref)
