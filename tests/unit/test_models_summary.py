"""Model summary: parameter counts per component that add up, and the generator's output shape."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import lpasrn.models
from lpasrn.config import OCRConfig
from lpasrn.models import GENERATOR_PRESETS, summarize


def test_summary_counts_add_up_and_show_the_output_shape() -> None:
    text = summarize(GENERATOR_PRESETS["lightweight"], OCRConfig(model_type="parseq_tiny"), (16, 48), 2)
    generator_part, ocr_part = text.split("\n\n")
    for part, total in ((generator_part, 1_528_595), (ocr_part, 5_992_357)):
        counts = [int(value.replace(",", "")) for value in re.findall(r"\s([\d,]+)\s+[\d.]+%$", part, re.MULTILINE)]
        assert counts[-1] == total
        assert sum(counts[:-1]) == total
    assert "RSTB 3 (layers.3)" in generator_part
    assert "output for LR 16x48: [1, 3, 32, 96]" in generator_part


def test_model_code_never_imports_ray() -> None:
    imported = set()
    for path in Path(lpasrn.models.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert "torch" in imported and "ray" not in imported
