"""The generator and the OCR under one module, so one DDP wrapper covers whatever a stage trains."""

from __future__ import annotations

from collections.abc import Callable, Sequence

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

    generator: SwinIRGenerator
    ocr: nn.Module

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
        """The training loss of one batch (and its parts, detached, for logging and the hard-example miner)."""
        if self.stage.trains_ocr_only:
            loss = plate_ocr(self.ocr).training_loss(self.ocr_source(lr, hr), texts)
            return {"loss": loss, "ocr": loss.detach()}
        sr = self.generator(lr, layouts)
        out = self.sr_loss(
            sr,
            hr,
            texts,
            layouts,
            char_weights,
            lambda: plate_char_logits(self.ocr, self.ocr(sr, max_length=PLATE_LENGTH)),
        )
        out["sr"] = sr.detach()
        return out

    def ocr_source(self, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """What the OCR stage reads: HR plates, or LR ones for the OCR-only baseline (`ocr_input: lr`)."""
        return lr if self.stage.cfg.ocr_input == "lr" else hr

    def sr_loss(
        self,
        sr: torch.Tensor,
        hr: torch.Tensor,
        texts: Sequence[str],
        layouts: Sequence[str],
        char_weights: torch.Tensor | None,
        read_characters: Callable[[], torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """L1 and LCOFL, as the stage uses them, of SR images: the one place training and validation compute
        the generator's loss. `read_characters` gives the OCR's plate character logits of `sr` (called after L1,
        so gradients sum in the same order as ever). `loss` keeps its graph; its parts are detached."""
        out: dict[str, torch.Tensor] = {}
        loss = sr.new_zeros(())
        if self.stage.uses_l1:
            l1 = F.l1_loss(sr.float(), hr.float())
            out["l1"] = l1.detach()
            loss = loss + l1
        if self.stage.uses_lcofl:
            char_logits = read_characters()
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

    def read(
        self, generator_input: torch.Tensor, lr: torch.Tensor, hr: torch.Tensor, layouts: Sequence[str]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validation's reading of a batch: the image the OCR reads (SR, or the OCR stage's own input) and the
        OCR's logits over a plate's positions."""
        source = self.ocr_source(lr, hr) if self.stage.trains_ocr_only else self.generator(generator_input, layouts)
        return source, self.ocr(source, max_length=PLATE_LENGTH)

    def validation_loss(
        self,
        source: torch.Tensor,
        logits: torch.Tensor,
        hr: torch.Tensor,
        texts: Sequence[str],
        layouts: Sequence[str],
        char_weights: torch.Tensor | None,
    ) -> torch.Tensor:
        """The stage's loss on a validation batch read by `read`: the generator's through `sr_loss`, and for the
        OCR stage the cross-entropy of the autoregressive reading (its training loss permutes the order)."""
        if self.stage.trains_ocr_only:
            return sequence_cross_entropy(self.ocr, logits, texts)
        return self.sr_loss(
            source.float(), hr, texts, layouts, char_weights, lambda: plate_char_logits(self.ocr, logits)
        )["loss"]


def sequence_cross_entropy(ocr: nn.Module, logits: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
    """Cross-entropy of OCR logits against the texts followed by EOS."""
    tokenizer = plate_ocr(ocr).tokenizer
    expected = tokenizer.encode(texts, logits.device)[:, 1:]
    steps = min(expected.shape[1], logits.shape[1])
    return F.cross_entropy(
        logits[:, :steps].flatten(0, 1), expected[:, :steps].flatten(), ignore_index=tokenizer.pad_id
    )
