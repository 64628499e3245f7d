"""The generator and the OCR under one module, so one DDP wrapper covers whatever a stage trains."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lpasrn.config import LossConfig
from lpasrn.data.charset import CHARSET, PLATE_LENGTH, encode
from lpasrn.losses.lcofl import lcofl_loss
from lpasrn.models import SwinIRGenerator
from lpasrn.models.ocr import plate_ocr
from lpasrn.training.stages import StageSpec


def plate_char_logits(ocr: nn.Module, logits: torch.Tensor) -> torch.Tensor:
    """[B, T, EOS + charset] OCR logits -> [B, 7, 36] logits over the plate charset, position-aligned."""
    first = plate_ocr(ocr).tokenizer.class_id(CHARSET[0])
    return logits[:, :PLATE_LENGTH, first : first + len(CHARSET)]


def encode_targets(texts: Sequence[str], device: torch.device) -> torch.Tensor:
    return torch.tensor([encode(text) for text in texts], dtype=torch.long, device=device)


class PlateSRSystem(nn.Module):
    """Computes one stage's training loss: the OCR's own (stage 0) or L1 (+ LCOFL through the OCR on SR)."""

    def __init__(self, generator: SwinIRGenerator, ocr: nn.Module, stage: StageSpec, loss_cfg: LossConfig):
        super().__init__()
        self.generator, self.ocr, self.stage, self.loss_cfg = generator, ocr, stage, loss_cfg

    def configure_trainable(self) -> list[nn.Parameter]:
        """Freeze what the stage does not train; the frozen OCR runs in eval mode (no dropout)."""
        self.generator.requires_grad_(self.stage.trains_generator)
        self.ocr.requires_grad_(self.stage.trains_ocr)
        return [p for p in self.parameters() if p.requires_grad]

    def train(self, mode: bool = True) -> PlateSRSystem:
        super().train(mode)
        if mode and not self.stage.trains_ocr:
            self.ocr.eval()
        if mode and not self.stage.trains_generator:
            self.generator.eval()
        return self

    def forward(
        self,
        lr: torch.Tensor,
        hr: torch.Tensor,
        texts: Sequence[str],
        layouts: Sequence[str],
        char_weights: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        if self.stage.trains_ocr_only:
            loss = plate_ocr(self.ocr).training_loss(lr if self.stage.cfg.ocr_input == "lr" else hr, texts)
            return {"loss": loss, "ocr": loss.detach()}
        sr = self.generator(lr, layouts)
        out: dict[str, torch.Tensor] = {"sr": sr.detach()}
        loss = sr.new_zeros(())
        if self.stage.uses_l1:
            l1 = F.l1_loss(sr.float(), hr.float())
            out["l1"] = l1.detach()
            loss = loss + l1
        if self.stage.uses_lcofl:
            char_logits = plate_char_logits(self.ocr, self.ocr(sr, max_length=PLATE_LENGTH))
            terms = lcofl_loss(
                char_logits,
                encode_targets(texts, sr.device),
                layouts,
                sr,
                hr,
                char_weights,
                self.loss_cfg.lambda_layout,
                self.loss_cfg.lambda_ssim,
            )
            out.update(
                lcofl=terms.total.detach(),
                classification=terms.classification.detach(),
                layout=terms.layout.detach(),
                char_logits=char_logits.detach(),
            )
            loss = loss + self.loss_cfg.lambda_lcofl * terms.total
        out["loss"] = loss
        return out
