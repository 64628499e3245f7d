"""The one place where an experiment's config becomes models: `model:` -> the SwinIR generator, `ocr:` -> the OCR.

`lpasrn.models` knows nothing of the config, as timm's model files know nothing of a training script; training, the
bundle, evaluation, prediction, export, `lpasrn model-summary` and the benchmarks all build their models here, so a
config key means the same everywhere. State dict names are the models' own: checkpoints load as they always did.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from torch import nn

from lpasrn.config import LpasrnConfig, ModelConfig, OCRConfig
from lpasrn.models.checkpoints import CheckpointError, load_checked_state_dict
from lpasrn.models.ocr import load_ocr_weights
from lpasrn.models.registry import create_model
from lpasrn.models.swinir import SwinIRGenerator, SwinIRPreset

logger = logging.getLogger(__name__)


def generator_preset(cfg: ModelConfig) -> SwinIRPreset:
    """The `model:` block's generator hyper-parameters (each shipped experiment's equal a registered preset)."""
    return SwinIRPreset(
        embed_dim=cfg.swinir_embed_dim,
        num_rstb=cfg.swinir_num_rstb,
        num_blocks_per_rstb=cfg.swinir_num_blocks_per_rstb,
        num_heads=cfg.swinir_num_heads,
        window_size=cfg.swinir_window_size,
        mlp_ratio=cfg.swinir_mlp_ratio,
        use_pyramid_attention=cfg.use_pyramid_attention,
    )


def build_generator(cfg: ModelConfig, scale: int) -> SwinIRGenerator:
    """The generator of a `model:` block for the data's up-scaling factor; `generator_frames` > 1 fuses frames."""
    return generator_preset(cfg).build(scale, pyramid_layout=cfg.pyramid_layout, multi_frame=cfg.generator_frames > 1)


def build_ocr(cfg: OCRConfig, pretrained: bool = True, **overrides: Any) -> nn.Module:
    """The OCR of an `ocr:` block with `pretrained_path`'s weights, unless `pretrained` is off (a stage with an
    init_checkpoint takes its OCR instead)."""
    model = create_model(cfg.model_type, **overrides)
    if not pretrained:
        return model
    if cfg.pretrained_path is None:
        logger.info("ocr.pretrained_path is not set: the %s OCR starts from random weights", cfg.model_type)
    else:
        load_ocr_weights(model, cfg.model_type, cfg.pretrained_path)
        logger.info("loaded %s OCR weights from %s", cfg.model_type, cfg.pretrained_path)
    return model


def load_trained_weights(generator: SwinIRGenerator, ocr: nn.Module, state: Mapping[str, Any], source: str) -> None:
    """Load a bundle's or stage checkpoint's generator and OCR weights, strictly: what does not fit raises a
    `CheckpointError` naming every key that differs. A single-frame generator's weights may seed a multi-frame one
    (its frame fusion starts fresh). Training's initial and resume states and the bundle all load through here."""
    for name in ("generator", "ocr"):
        if name not in state:
            raise CheckpointError(f"{source}: checkpoint has no '{name}' weights")
    load_checked_state_dict(generator, generator.completed_state(dict(state["generator"])), f"{source} (generator)")
    load_checked_state_dict(ocr, state["ocr"], f"{source} (ocr)")


def build_trained_models(cfg: LpasrnConfig, state: Mapping[str, Any], source: str) -> tuple[SwinIRGenerator, nn.Module]:
    """The generator and OCR of a bundle or stage checkpoint, from its own config (`load_trained_weights`)."""
    generator = build_generator(cfg.model, cfg.data.scale)
    ocr = build_ocr(cfg.ocr, pretrained=False)
    load_trained_weights(generator, ocr, state, source)
    return generator, ocr
