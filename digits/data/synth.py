"""Synthetic meter-counter digits: a rolling number wheel seen through a 32x20 window, reproducible by seed.

Each image shows the wheel at a reading: the digit in the window and, for an in-between reading such as 5.3,
the next digit scrolling in from below by the fractional part (the wheel turns upwards). Fonts (DejaVu Sans,
Serif, Mono and their bold cuts, shipped with matplotlib), dark or light wheels, cylinder shading, uneven
lighting, contrast, blur and sensor noise vary per image. Every image draws from its own generator seeded by
(seed, index), so the same seed writes the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from experiments.errors import UserError
from experiments.io import atomic_directory

FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
)
SUPERSAMPLE = 4  # glyphs are drawn 4x larger and box-filtered down: anti-aliased edges at any sub-pixel offset
LABELS_NAME = "labels.txt"


@dataclass(frozen=True)
class SynthSpec:
    """What to render: how many images, for which class count, at what size and colour."""

    count: int
    nb_classes: int = 10
    channels: int = 1
    height: int = 32
    width: int = 20
    seed: int = 0

    def validate(self) -> None:
        if self.count < 1:
            raise UserError(f"--count must be at least 1, got {self.count}")
        if self.nb_classes not in (10, 100):
            raise UserError(f"--classes must be 10 or 100, got {self.nb_classes}")
        if self.channels not in (1, 3):
            raise UserError(f"--channels must be 1 (grey) or 3 (RGB), got {self.channels}")
        if self.height < 8 or self.width < 8:
            raise UserError(f"image size {self.height}x{self.width} is too small (at least 8x8)")


@lru_cache(maxsize=1)
def font_paths() -> tuple[Path, ...]:
    """The DejaVu fonts found in matplotlib's data folder; none at all is a user error."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    found = tuple(folder / name for name in FONT_FILES if (folder / name).is_file())
    if not found:
        raise UserError(f"{folder}: no DejaVu fonts found (they ship with matplotlib; reinstall matplotlib)")
    return found


@lru_cache(maxsize=256)
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


def reading_text(class_index: int, nb_classes: int) -> str:
    """The label of a class as `labels.txt` writes it: `5` for 10 classes, `5.3` for 100."""
    return f"{class_index / 10:.1f}" if nb_classes == 100 else str(class_index)


def _wheel_mask(digit: int, fraction: float, spec: SynthSpec, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage in [0, 1] at (H, W): `digit` moved up by `fraction` of a wheel step, its successor below."""
    scale = SUPERSAMPLE
    height, width = spec.height * scale, spec.width * scale
    font_path = font_paths()[int(rng.integers(len(font_paths())))]
    glyph_height = rng.uniform(0.55, 0.78) * height
    font = _font(font_path, max(8, int(round(glyph_height / 0.73))))  # digit cap height is ~0.73 em in DejaVu
    pitch = height * rng.uniform(0.95, 1.15)  # distance between digits on the wheel
    x_shift = rng.normal(0.0, 0.05) * width
    y_shift = rng.normal(0.0, 0.04) * height
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for step in (-1, 0, 1):  # previous, current and next digit on the wheel
        text = str((digit + step) % 10)
        left, top, right, bottom = font.getbbox(text)
        centre_y = height / 2 + y_shift + (step - fraction) * pitch
        origin = (width / 2 + x_shift - (left + right) / 2, centre_y - (top + bottom) / 2)
        draw.text(origin, text, font=font, fill=255)
    small = canvas.resize((spec.width, spec.height), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def _colours(spec: SynthSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(wheel, ink) colours per channel in [0, 1]: a dark wheel with light digits or the reverse."""
    contrast = rng.uniform(0.35, 0.85)
    dark = rng.uniform(0.02, 0.35)
    wheel, ink = (dark, dark + contrast) if rng.random() < 0.5 else (dark + contrast, dark)
    tint = rng.normal(0.0, 0.06, size=spec.channels) if spec.channels == 3 else np.zeros(1)
    return np.clip(wheel + tint, 0, 1), np.clip(ink + tint[::-1], 0, 1)


def _lighting(spec: SynthSpec, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative (H, W) light: the wheel's curvature darkens top and bottom, plus a slanted gradient."""
    ys = np.linspace(-1.0, 1.0, spec.height)[:, None]
    xs = np.linspace(-1.0, 1.0, spec.width)[None, :]
    cylinder = 1.0 - rng.uniform(0.0, 0.45) * ys**2
    angle = rng.uniform(0, 2 * np.pi)
    gradient = 1.0 + rng.uniform(0.0, 0.3) * (np.cos(angle) * xs + np.sin(angle) * ys) / 2
    return (cylinder * gradient).astype(np.float32)


def render_reading(class_index: int, spec: SynthSpec, rng: np.random.Generator) -> np.ndarray:
    """One uint8 (H, W, C) image of the wheel showing class `class_index` (a digit, or tenths for 100)."""
    if spec.nb_classes == 100:
        digit, tenths = divmod(class_index, 10)
        fraction = tenths / 10 + rng.uniform(-0.02, 0.02)
    else:
        digit, fraction = class_index, rng.uniform(0.0, 0.12)  # a whole reading still sits a little off-centre
    mask = _wheel_mask(digit, max(0.0, fraction), spec, rng)[..., None]
    wheel, ink = _colours(spec, rng)
    image = (wheel * (1 - mask) + ink * mask) * _lighting(spec, rng)[..., None]
    image = np.clip(image * 255.0, 0, 255).astype(np.uint8)
    pil = Image.fromarray(image[..., 0] if spec.channels == 1 else image)
    radius = rng.uniform(0.0, 0.9)
    if radius > 0.2:
        pil = pil.filter(ImageFilter.GaussianBlur(radius))
    blurred = np.asarray(pil, dtype=np.float32)
    noisy = blurred + rng.normal(0.0, rng.uniform(1.0, 10.0), size=blurred.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8).reshape(spec.height, spec.width, spec.channels)


def render_dataset(spec: SynthSpec) -> list[tuple[str, np.ndarray]]:
    """(label, image) for `spec.count` images, classes balanced (index modulo class count)."""
    spec.validate()
    return [
        (
            reading_text(index % spec.nb_classes, spec.nb_classes),
            render_reading(index % spec.nb_classes, spec, np.random.default_rng([spec.seed, index])),
        )
        for index in range(spec.count)
    ]


def write_dataset(out: str | Path, spec: SynthSpec, overwrite: bool = False) -> Path:
    """Write `out/labels.txt` (`filename<TAB>reading`) and the PNGs, all at once (the folder appears complete)."""
    spec.validate()
    font_paths()
    out = Path(out)
    with atomic_directory(out, overwrite=overwrite) as tmp:
        lines = []
        for index, (label, image) in enumerate(render_dataset(spec)):
            name = f"synth_{index:05d}.png"
            pixels = image[..., 0] if spec.channels == 1 else image
            Image.fromarray(pixels).save(tmp / name)
            lines.append(f"{name}\t{label}")
        (tmp / LABELS_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
