"""Pure PyTorch models of lpasrn: the SwinIR generator with Character Pyramid Attention, and the OCRs."""
from lpasrn.models.checkpoints import resolve_pretrained
from lpasrn.models.ocr import build_ocr, create_ocr, list_ocr_models
from lpasrn.models.parseq import PARSEQ_SIZES, OCRResult, PARSeq, create_parseq
from lpasrn.models.slot_ocr import SLOT_OCR_SIZES, PlateSlotOCR
from lpasrn.models.pyramid_attention import CharacterPyramidAttention
from lpasrn.models.summary import summarize
from lpasrn.models.swinir import GENERATOR_PRESETS, SwinIRGenerator, build_generator, load_generator_weights
from lpasrn.models.tokenizer import Tokenizer

__all__ = [
    "GENERATOR_PRESETS",
    "PARSEQ_SIZES",
    "SLOT_OCR_SIZES",
    "CharacterPyramidAttention",
    "OCRResult",
    "PARSeq",
    "PlateSlotOCR",
    "SwinIRGenerator",
    "Tokenizer",
    "build_generator",
    "build_ocr",
    "create_ocr",
    "create_parseq",
    "list_ocr_models",
    "load_generator_weights",
    "resolve_pretrained",
    "summarize",
]
