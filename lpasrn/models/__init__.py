"""Pure PyTorch models of lpasrn: the SwinIR generator with Character Pyramid Attention, and the PARSeq OCR."""
from lpasrn.models.checkpoints import resolve_pretrained
from lpasrn.models.parseq import PARSEQ_SIZES, OCRResult, PARSeq, build_ocr, create_parseq
from lpasrn.models.pyramid_attention import CharacterPyramidAttention
from lpasrn.models.summary import summarize
from lpasrn.models.swinir import GENERATOR_PRESETS, SwinIRGenerator, build_generator, load_generator_weights
from lpasrn.models.tokenizer import Tokenizer

__all__ = [
    "GENERATOR_PRESETS",
    "PARSEQ_SIZES",
    "CharacterPyramidAttention",
    "OCRResult",
    "PARSeq",
    "SwinIRGenerator",
    "Tokenizer",
    "build_generator",
    "build_ocr",
    "create_parseq",
    "load_generator_weights",
    "resolve_pretrained",
    "summarize",
]
