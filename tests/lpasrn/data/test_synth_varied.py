"""The varied training style: typefaces and LR degradations drawn per track and frame, never heldout's typeface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lpasrn.data import synth
from lpasrn.data.synth import SynthConfig, degrade, render_dataset


def test_varied_is_deterministic_per_seed(tmp_path: Path) -> None:
    def files(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    first = files(render_dataset(tmp_path / "a", SynthConfig(tracks=3, seed=5, frames=2, style="varied")).root)
    again = files(render_dataset(tmp_path / "b", SynthConfig(tracks=3, seed=5, frames=2, style="varied")).root)
    other = files(render_dataset(tmp_path / "c", SynthConfig(tracks=3, seed=6, frames=2, style="varied")).root)
    assert first == again and first != other


def test_varied_typefaces_exclude_the_heldout_one() -> None:
    fonts = {synth.plate_font_path(art).name for art in synth.VARIED_ARTS}
    assert len(fonts) == len(synth.VARIED_ARTS) >= 3  # every art its own typeface
    assert synth.plate_font_path("heldout").name not in fonts


def test_varied_tracks_draw_every_typeface(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[str] = []
    real = synth._draw_plate

    def spy(text, layout, size, rng, style="standard"):  # type: ignore[no-untyped-def]
        drawn.append(style)
        return real(text, layout, size, rng, style)

    monkeypatch.setattr(synth, "_draw_plate", spy)
    cfg = SynthConfig(tracks=30, seed=0, frames=1, style="varied")
    for index in range(cfg.tracks):
        plan, rng = synth.plan_track(cfg, index)
        synth.render_hr_frames(plan.text, plan.layout, cfg, rng)
    assert set(drawn) == set(synth.VARIED_ARTS)


def test_varied_degradations_spread_wider_than_standard() -> None:
    """Frame-to-frame sharpness varies more under the varied chain than the standard one: blur kind, width and
    down-scaling filter are drawn per frame."""
    plate = synth.render_plate("ABC1D23", "Mercosur", (32, 96), np.random.default_rng(0))

    def sharpness(style: str) -> np.ndarray:
        values = []
        for seed in range(24):
            lr = np.asarray(degrade(plate, 2, np.random.default_rng(seed), style).convert("L"), dtype=np.float32)
            values.append(np.abs(np.diff(lr, axis=1)).mean())
        return np.asarray(values)

    standard, varied = sharpness("standard"), sharpness("varied")
    assert varied.std() > 1.5 * standard.std()
    assert isinstance(degrade(plate, 2, np.random.default_rng(0), "varied"), Image.Image)
