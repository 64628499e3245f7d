"""lpasrn: license-plate super-resolution (SwinIR + Character Pyramid Attention, PARSeq OCR) on Ray Train."""

__version__ = "0.1.0"
