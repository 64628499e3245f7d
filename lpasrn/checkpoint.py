"""Stage checkpoints: one `state.pt` per checkpoint folder, written atomically, read with weights_only.

Everything needed to resume a stage exactly lives in one dict: generator, OCR, optimizer, scheduler, grad
scaler, epoch, confusion matrix, miner state and RNG states. Only tensors and plain Python values go in, so
`torch.load(weights_only=True)` reads it back and nothing on disk is unpickled as code.
"""

from __future__ import annotations

import io
import pickle
import random
from pathlib import Path
from typing import Any

import torch

from experiments import storage
from experiments.errors import UserError
from experiments.io import atomic_path

STATE_FILE = "state.pt"
TRAINED_KEY = "trained"  # which stages trained a checkpoint's generator and OCR (`training.stages.trained_record`)


def save_state(folder: str | Path, state: dict[str, Any]) -> Path:
    target = Path(folder) / STATE_FILE
    with atomic_path(target) as tmp:
        torch.save(state, tmp)
    return target


def load_state(path: str | Path) -> dict[str, Any]:
    """Load `state.pt` (or a folder holding one; a local path or a URI such as s3://...) on the CPU.

    A missing or unreadable file is a UserError.
    """
    location = str(path)
    source: io.BytesIO | Path
    if storage.is_uri(location):
        if not location.endswith(".pt"):
            location = storage.join(location, STATE_FILE)
        try:
            source = io.BytesIO(storage.read_bytes(location))
        except FileNotFoundError:
            raise UserError(f"{location}: checkpoint not found") from None
    else:
        source = Path(path) / STATE_FILE if Path(path).is_dir() else Path(path)
        location = str(source)
        if not source.is_file():
            raise UserError(f"{location}: checkpoint not found")
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else err.__class__.__name__
        raise UserError(f"{location}: not a loadable glyphray checkpoint ({first_line})") from None


def rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]),
        "python_version": random.getstate()[0],
        "python_gauss": random.getstate()[2],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def describe_trained(record: dict[str, Any] | None) -> str:
    """'generator trained in stages 1, 2; OCR in stage 0' (or what is known of it)."""
    if record is None:
        return "which stages trained it is not recorded"

    def stages(indices: list[int]) -> str:
        if not indices:
            return "no stage" if record["history_complete"] else "no recorded stage"
        return f"stage{'s' if len(indices) > 1 else ''} {', '.join(map(str, indices))}"

    return f"generator trained in {stages(record['generator'])}; OCR in {stages(record['ocr'])}"
