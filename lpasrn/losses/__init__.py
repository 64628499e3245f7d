"""Losses and the trackers that shape them (pure PyTorch)."""

from lpasrn.losses.confusion import CharacterConfusionTracker
from lpasrn.losses.lcofl import LCOFLTerms, confusion_weighted_ce, layout_penalty, lcofl_loss
from lpasrn.losses.ssim import psnr, ssim

__all__ = [
    "CharacterConfusionTracker",
    "LCOFLTerms",
    "confusion_weighted_ce",
    "layout_penalty",
    "lcofl_loss",
    "psnr",
    "ssim",
]
