"""Shared fixtures: tiny plate tracks written by hand (independent of the synthesiser) and CLI runners."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]


def write_track(root: Path, track_id: str, text: str = "ABC1234", layout: str = "Brazilian", frames: int = 5,
                lr_size: tuple[int, int] = (16, 48), scale: int = 2, ext: str = "png", seed: int = 0) -> Path:
    """Write one track in the dataset layout with random-noise frames; returns its folder."""
    folder = root / track_id
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for number in range(1, frames + 1):
        for side, (h, w) in (("lr", lr_size), ("hr", (lr_size[0] * scale, lr_size[1] * scale))):
            pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{side}-{number:03d}.{ext}")
    annotation = {"plate_text": text, "plate_layout": layout, "corners": {}}
    (folder / "annotations.json").write_text(json.dumps(annotation), encoding="utf-8")
    return folder


@pytest.fixture
def plate_root(tmp_path: Path) -> Path:
    """Six valid tracks over two scenarios and both layouts."""
    root = tmp_path / "plates"
    specs = [("Scenario-A/Brazilian/track_00001", "ABC1234", "Brazilian"),
             ("Scenario-A/Brazilian/track_00002", "XYZ9876", "Brazilian"),
             ("Scenario-A/Mercosur/track_00003", "BRA2E19", "Mercosur"),
             ("Scenario-B/Mercosur/track_00004", "QWE1R23", "Mercosur"),
             ("Scenario-B/Brazilian/track_00005", "JKL0001", "Brazilian"),
             ("Scenario-B/Mercosur/track_00006", "MNO5P67", "Mercosur")]
    for index, (track_id, text, layout) in enumerate(specs):
        write_track(root, track_id, text, layout, seed=index)
    return root


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m <args>` as a new user would, capturing text output."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd or REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
