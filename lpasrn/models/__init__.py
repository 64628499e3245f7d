"""Pure PyTorch models of lpasrn: the SwinIR generator with Character Pyramid Attention, and the OCRs.

Nothing here reads the experiment config: `lpasrn.model_factory` maps a config to these models.
"""

from lpasrn.models.checkpoints import CheckpointError, CheckpointMismatchError, resolve_pretrained
from lpasrn.models.ocr import load_ocr_weights
from lpasrn.models.parseq import PARSEQ_SIZES, OCRResult, PARSeq, create_parseq
from lpasrn.models.pyramid_attention import CharacterPyramidAttention
from lpasrn.models.registry import create_model, list_models
from lpasrn.models.slot_ocr import SLOT_OCR_SIZES, PlateSlotOCR
from lpasrn.models.summary import registry_table, summarize
from lpasrn.models.swinir import GENERATOR_PRESETS, SwinIRGenerator, SwinIRPreset, load_generator_weights
from lpasrn.models.tokenizer import Tokenizer

__all__ = [
    "GENERATOR_PRESETS",
    "PARSEQ_SIZES",
    "SLOT_OCR_SIZES",
    "CharacterPyramidAttention",
    "CheckpointError",
    "CheckpointMismatchError",
    "OCRResult",
    "PARSeq",
    "PlateSlotOCR",
    "SwinIRGenerator",
    "SwinIRPreset",
    "Tokenizer",
    "create_model",
    "create_parseq",
    "list_models",
    "load_generator_weights",
    "load_ocr_weights",
    "registry_table",
    "resolve_pretrained",
    "summarize",
]
