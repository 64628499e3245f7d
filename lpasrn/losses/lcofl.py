"""Layout- and Character-Oriented Focal Loss (LCOFL), differentiable end to end.

LCOFL = confusion-weighted cross-entropy on the OCR's logits for the SR image
      + lambda_layout * layout penalty (probability on letters where the layout wants a digit, and vice versa)
      + lambda_ssim * (1 - SSIM(SR, HR)).
The published code decodes strings before its classification and layout terms, so no gradient reaches the
generator through them; here both terms work on the softmax of the logits, so all three terms do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lpasrn.data.charset import CHARSET, DIGITS, letter_slot_mask
from lpasrn.losses.ssim import ssim

_IS_LETTER = torch.tensor([char not in DIGITS for char in CHARSET])


@dataclass
class LCOFLTerms:
    total: torch.Tensor
    classification: torch.Tensor
    layout: torch.Tensor
    ssim: torch.Tensor  # the SSIM value itself (higher is better); the loss uses 1 - ssim


def layout_letter_masks(layouts: Sequence[str], device: torch.device) -> torch.Tensor:
    """[B, 7] bool: True where each plate's layout wants a letter."""
    return torch.tensor([letter_slot_mask(layout) for layout in layouts], dtype=torch.bool, device=device)


def layout_penalty(char_logits: torch.Tensor, layouts: Sequence[str]) -> torch.Tensor:
    """Mean probability mass on the wrong character kind (letters in digit slots, digits in letter slots)."""
    probs = char_logits.float().softmax(-1)  # [B, 7, 36]
    is_letter = _IS_LETTER.to(probs.device)
    letter_mass = probs[..., is_letter].sum(-1)
    digit_mass = probs[..., ~is_letter].sum(-1)
    wants_letter = layout_letter_masks(layouts, probs.device)
    wrong = torch.where(wants_letter, digit_mass, letter_mass)
    return wrong.mean()


def confusion_weighted_ce(
    char_logits: torch.Tensor, targets: torch.Tensor, char_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy per character, each weighted by its true character's confusion weight."""
    logits = char_logits.float().flatten(0, 1)
    flat_targets = targets.flatten()
    per_char = F.cross_entropy(logits, flat_targets, reduction="none")
    if char_weights is None:
        return per_char.mean()
    weights = char_weights.to(per_char.device)[flat_targets]
    return (per_char * weights).sum() / weights.sum()


def lcofl_loss(
    char_logits: torch.Tensor,
    targets: torch.Tensor,
    layouts: Sequence[str],
    sr: torch.Tensor,
    hr: torch.Tensor,
    char_weights: torch.Tensor | None = None,
    lambda_layout: float = 0.5,
    lambda_ssim: float = 0.2,
) -> LCOFLTerms:
    """`char_logits` [B, 7, 36] over the plate charset, `targets` [B, 7] class indices, `sr`/`hr` in [0, 1]."""
    classification = confusion_weighted_ce(char_logits, targets, char_weights)
    layout = layout_penalty(char_logits, layouts)
    similarity = ssim(sr.float(), hr.float())
    total = classification + lambda_layout * layout + lambda_ssim * (1 - similarity)
    return LCOFLTerms(total=total, classification=classification, layout=layout, ssim=similarity)
