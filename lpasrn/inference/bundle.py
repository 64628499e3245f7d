"""The self-contained inference bundle: generator + OCR weights + the resolved config, in one file.

It also carries which stages trained each part (`trained`), so loading a bundle whose generator never trained
(`lpasrn train --stage 0` alone) warns instead of scoring noise as if it were super-resolution.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import torch

from experiments import storage
from experiments.errors import UserError
from lpasrn.checkpoint import TRAINED_KEY, describe_trained, load_state
from lpasrn.config import LpasrnConfig

logger = logging.getLogger(__name__)

BUNDLE_FORMAT = "glyphray-lpasrn-bundle/1"
BUNDLE_NAME = "lp_asrn_bundle.pt"


def export_bundle(state: dict[str, Any], cfg: LpasrnConfig, out: str | Path) -> str:
    """Write the bundle to a local path or a URI (s3://...), atomically either way."""
    source = {"stage": state.get("stage"), "epoch": state.get("epoch")}
    bundle = {
        "format": BUNDLE_FORMAT,
        "generator": state["generator"],
        "ocr": state["ocr"],
        "config": cfg.model_dump(mode="json"),
        "source": source,
        TRAINED_KEY: state.get(TRAINED_KEY),
    }
    buffer = io.BytesIO()
    torch.save(bundle, buffer)
    return storage.write_bytes(out, buffer.getvalue())


def warn_if_untrained(path: str | Path, record: dict[str, Any] | None) -> None:
    """Warn when the record says no stage trained the generator: its SR images are noise, not a result."""
    if record is not None and record["history_complete"] and not record["generator"]:
        logger.warning(
            "%s: the generator was never trained (%s): its SR images and scores mean nothing; "
            "train stages 1-4 (lpasrn train without --stage) and use that bundle",
            path,
            describe_trained(record),
        )


def load_bundle(path: str | Path, device: str | torch.device = "cpu", warn_untrained: bool = True):
    """(generator, ocr, config) from a bundle, or from a stage checkpoint (`state.pt` or its folder), local or
    at a URI; `warn_untrained=False` where only the OCR is used. Weights that do not fit the config they carry
    raise `CheckpointMismatchError`."""
    from lpasrn.model_factory import build_trained_models

    payload = load_state(path)
    if "generator" not in payload or "ocr" not in payload or "config" not in payload:
        raise UserError(f"{path}: not an lpasrn bundle or stage checkpoint (needs generator, ocr and config)")
    if warn_untrained:
        warn_if_untrained(path, payload.get(TRAINED_KEY))
    cfg = LpasrnConfig.model_validate(payload["config"])
    generator, ocr = build_trained_models(cfg, payload, str(path))
    return generator.to(device).eval(), ocr.to(device).eval(), cfg
