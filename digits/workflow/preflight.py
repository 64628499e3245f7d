"""Checks that need no TensorFlow, run before any is imported: a bad run fails in a second, not after a minute."""

from __future__ import annotations

from pathlib import Path

from digits.architectures import resolve_name
from digits.config import DigitsConfig
from digits.data.sources import require_data_sources
from experiments.errors import UserError
from experiments.paths import missing_input_hint


def check_run(cfg: DigitsConfig) -> None:
    """Known architecture, existing data folders, and only settings this build can honour."""
    resolve_name(cfg.model_architecture)
    require_data_sources(cfg)
    for index, source in enumerate(cfg.data_sources):
        folder = Path(source.path)
        if not folder.is_dir():
            what = "not found" if not folder.exists() else "is not a folder"
            raise UserError(f"{folder}: data source folder {what} (data_sources.{index}.path){missing_input_hint()}")
    if cfg.use_qat:
        from digits.export.qat import qat_available

        qat_available()
    if cfg.esp_dl_quantize:
        from digits.export.espdl import espdl_available

        espdl_available()
