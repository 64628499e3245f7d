"""Model summary: parameter counts per component that add up, and the generator's output shape."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import lpasrn.models
from lpasrn.models import create_model, list_models, summarize
from lpasrn.models.summary import registry_table


def table_counts(table: str) -> list[int]:
    """The parameter column of a summary table, its total last."""
    return [int(value.replace(",", "")) for value in re.findall(r"\s([\d,]+)\s+[\d.]+%$", table, re.MULTILINE)]


def test_summary_counts_add_up_and_show_the_output_shape() -> None:
    text = summarize(create_model("swinir_lightweight", scale=2), create_model("parseq_tiny"), "parseq_tiny", (16, 48))
    generator_part, ocr_part = text.split("\n\n")
    for part, total in ((generator_part, 1_528_595), (ocr_part, 5_992_357)):
        counts = table_counts(part)
        assert counts[-1] == total
        assert sum(counts[:-1]) == total
    assert "RSTB 3 (layers.3)" in generator_part
    assert "output for LR 16x48: [1, 3, 32, 96]" in generator_part


def test_a_multi_frame_generator_counts_its_frame_fusion() -> None:
    text = summarize(create_model("swinir_tiny", multi_frame=True), create_model("slot_cnn"), "slot_cnn", (16, 48))
    generator_part = text.split("\n\n")[0]
    counts = table_counts(generator_part)
    assert "frame fusion (frame_fusion)" in generator_part and sum(counts[:-1]) == counts[-1]


def test_the_registry_table_has_one_line_per_model_with_its_parameters() -> None:
    lines = registry_table(scale=2).splitlines()
    assert [line.split()[0] for line in lines[1:]] == list_models("generator") + list_models("ocr")
    maximum = next(line for line in lines if line.startswith("swinir_maximum "))
    assert "10,359,161" in maximum and "embed 144" in maximum and "window 6" in maximum


def test_model_code_imports_neither_ray_nor_the_experiment_config() -> None:
    imported = set()
    for path in Path(lpasrn.models.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
    roots = {name.split(".")[0] for name in imported}
    assert "torch" in roots and "ray" not in roots and "experiments" not in roots
    assert "lpasrn.config" not in imported
