"""Synthetic Brazilian / Mercosur license-plate tracks in the UFPR-SR-Plates (ICPR-2026 LRLPR) layout.

The real datasets need a licence agreement and a download; synthetic tracks in exactly their format let the
reader, training, OCR and tuning run and be tested anywhere. Written layout:

    ROOT/<Scenario-A|Scenario-B>/<Brazilian|Mercosur>/track_NNNNN/{hr,lr}-001.png .. + annotations.json
    ROOT/split.txt

Every track draws from its own `SeedSequence([seed, track_index])` stream, so tracks do not depend on each
other and the same config gives byte-identical files. Pure numpy/PIL: no torch, no ray.

`style="heldout"` renders the same tracks (same texts, layouts and splits for a seed) differently from training:
another typeface, other plate art, colour casts and shadows on the scene, and harsher LR degradations (motion
blur, area down-scaling, heavier noise and JPEG). A model trained on standard plates and scored on heldout ones
shows how far it generalises beyond the look it was trained on.

`style="varied"` is for training models that must generalise: every track draws its plate art from several
typefaces (never the heldout one) and its LR chain from randomised degradation families (blur kind and width,
down-scaling filter, noise, JPEG quality, scene colour cast), as blind super-resolution trains on randomised
degradations rather than one fixed chain.
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from experiments.errors import UserError
from experiments.io import atomic_directory
from lpasrn.data.charset import CHARSET, DIGITS, LAYOUT_PATTERNS, LETTERS, canonical_layout, layout_problem

SCENARIOS = ("Scenario-A", "Scenario-B")
LAYOUT_CHOICES = ("brazilian", "mercosur", "mixed")
SCALES = (2, 3, 4)
MIN_HR_SIZE = (16, 32)
SPLITS = ("train", "val", "test")
SUPERSAMPLE = 4  # draw and warp at 4x, then downsample with Lanczos: crisp strokes at 32 px
PLATE_ASPECT = 400 / 130  # both Brazilian plate models are 400 mm x 130 mm
PLATE_FILL = 0.88  # nominal share of the crop width the plate covers (a small margin of car body around it)
CITY_LINES = (
    "SP - SAO PAULO",
    "PR - CURITIBA",
    "RJ - RIO DE JANEIRO",
    "MG - BELO HORIZONTE",
    "SC - JOINVILLE",
    "RS - PORTO ALEGRE",
    "BA - SALVADOR",
    "PR - LONDRINA",
    "SP - CAMPINAS",
    "GO - GOIANIA",
    "PE - RECIFE",
    "PR - MARINGA",
)
# Body colours and how often they occur: mostly silver, grey, black and white cars, as on Brazilian roads.
CAR_COLOURS = (
    (172, 174, 178),
    (120, 122, 126),
    (70, 72, 76),
    (34, 35, 38),
    (222, 222, 218),
    (140, 32, 30),
    (38, 58, 104),
    (96, 90, 78),
)
CAR_COLOUR_WEIGHTS = (0.22, 0.18, 0.14, 0.16, 0.14, 0.06, 0.06, 0.04)
MERCOSUR_BLUE = (0, 51, 153)
# Fonts ship with matplotlib (a dependency), so every machine draws the same glyphs. Matplotlib ships no
# condensed cut; glyphs are squeezed into narrow cells, which gives the condensed plate look either way.
PLATE_FONT_FILES = ("DejaVuSansCondensed-Bold.ttf", "DejaVuSans-Bold.ttf")
GLYPH_POINTS = 128  # glyphs are rasterised once at this size and resampled to every cell


@dataclass(frozen=True)
class PlateArt:
    """Everything a style draws differently on the plate itself; boxes are (x0, y0, x1, y1) shares of the plate."""

    fonts: tuple[str, ...]  # first one present in matplotlib's data folder wins
    glyph_fill: float  # share of a character cell a glyph may fill: less is wider spacing
    border: float  # border stroke as a share of the plate height
    brazilian_grey: tuple[float, float]  # background grey level range
    brazilian_chars: tuple[float, float, float, float]
    mercosur_paper: tuple[float, float, float]
    mercosur_blue: tuple[float, float, float]
    mercosur_band: float  # blue band height as a share of the plate height
    mercosur_chars: tuple[float, float, float, float]
    stain: float  # darkest weathering factor
    brushed: float  # strength of horizontal brushed-metal streaks; 0 draws none


PLATE_ART = {
    "standard": PlateArt(
        fonts=PLATE_FONT_FILES,
        glyph_fill=0.88,
        border=0.035,
        brazilian_grey=(176, 212),
        brazilian_chars=(0.045, 0.3, 0.955, 0.9),
        mercosur_paper=(244, 245, 246),
        mercosur_blue=MERCOSUR_BLUE,
        mercosur_band=0.25,
        mercosur_chars=(0.05, 0.34, 0.95, 0.9),
        stain=0.88,
        brushed=0.0,
    ),
    # A monospaced bold cut (slab I and 1, dotted 0), a darker brushed grey or a cream sheet, a lighter blue and
    # narrower band, a heavier border, slightly smaller and more widely spaced characters: still a plausible
    # plate, never the training look.
    "heldout": PlateArt(
        fonts=("DejaVuSansMono-Bold.ttf",),
        glyph_fill=0.8,
        border=0.06,
        brazilian_grey=(150, 185),
        brazilian_chars=(0.07, 0.34, 0.93, 0.88),
        mercosur_paper=(236, 233, 220),
        mercosur_blue=(24, 70, 160),
        mercosur_band=0.22,
        mercosur_chars=(0.07, 0.36, 0.93, 0.88),
        stain=0.78,
        brushed=0.05,
    ),
}
# The varied style's typefaces: the standard look plus a serif and a Times-like bold cut (heldout's mono excluded).
PLATE_ART["serif"] = replace(PLATE_ART["standard"], fonts=("DejaVuSerif-Bold.ttf",), glyph_fill=0.9, border=0.045)
PLATE_ART["stix"] = replace(
    PLATE_ART["standard"], fonts=("STIXGeneralBol.ttf",), glyph_fill=0.86, brazilian_grey=(165, 205)
)
VARIED_ARTS = ("standard", "serif", "stix")
STYLE_CHOICES = ("standard", "heldout", "varied")


@dataclass(frozen=True)
class SynthConfig:
    """What to synthesise; validated on construction so a bad CLI value fails before any work."""

    tracks: int
    layout: str = "mixed"  # "brazilian" | "mercosur" | "mixed"
    seed: int = 0
    hr_size: tuple[int, int] = (32, 96)  # (H, W)
    scale: int = 2
    frames: int = 5
    split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    style: str = "standard"  # "standard" (training look) | "heldout" (rendered differently, for testing) | "varied"
    test_only: bool = False  # no split.txt: every command reads the folder as one test set

    def __post_init__(self) -> None:
        object.__setattr__(self, "layout", str(self.layout).strip().lower())
        object.__setattr__(self, "style", str(self.style).strip().lower())
        object.__setattr__(self, "hr_size", tuple(int(v) for v in self.hr_size))
        object.__setattr__(self, "split_ratios", tuple(float(v) for v in self.split_ratios))
        problem = _config_problem(self)
        if problem:
            raise UserError(problem)

    @property
    def lr_size(self) -> tuple[int, int]:
        return self.hr_size[0] // self.scale, self.hr_size[1] // self.scale


def _config_problem(cfg: SynthConfig) -> str | None:
    """The first invalid argument as a one-line message naming its CLI flag, or None."""
    height, width = cfg.hr_size if len(cfg.hr_size) == 2 else (0, 0)
    ratios = cfg.split_ratios
    checks = [
        (cfg.tracks >= 1, "--tracks must be at least 1"),
        (cfg.layout in LAYOUT_CHOICES, f"--layout must be one of {', '.join(LAYOUT_CHOICES)} (got {cfg.layout!r})"),
        (cfg.seed >= 0, f"--seed must be a non-negative integer (got {cfg.seed})"),
        (cfg.scale in SCALES, f"--scale must be 2, 3 or 4 (got {cfg.scale})"),
        (len(cfg.hr_size) == 2, f"--hr-size must be two numbers, height and width (got {cfg.hr_size})"),
        (
            height >= MIN_HR_SIZE[0] and width >= MIN_HR_SIZE[1],
            f"--hr-size must be at least {MIN_HR_SIZE[0]}x{MIN_HR_SIZE[1]} (got {height}x{width})",
        ),
        (
            cfg.scale not in SCALES or (height % cfg.scale == 0 and width % cfg.scale == 0),
            f"--hr-size {height}x{width} must be divisible by --scale {cfg.scale}",
        ),
        (cfg.frames >= 1, "--frames must be at least 1"),
        (
            len(ratios) == 3 and min(ratios) >= 0 and ratios[0] > 0 and abs(sum(ratios) - 1) < 1e-6,
            f"--split-ratios must be three non-negative numbers train,val,test with train > 0 summing to 1 "
            f"(got {ratios})",
        ),
        (cfg.style in STYLE_CHOICES, f"--style must be one of {', '.join(STYLE_CHOICES)} (got {cfg.style!r})"),
    ]
    return next((message for ok, message in checks if not ok), None)


@dataclass(frozen=True)
class SynthSummary:
    root: Path
    tracks: int
    images: int
    layouts: dict[str, int]  # {"Brazilian": n, "Mercosur": m}
    splits: dict[str, int]  # {"train": .., "val": .., "test": ..}


@dataclass(frozen=True)
class TrackPlan:
    """Who a track is before any pixel is drawn: number, scenario, layout and plate text."""

    number: int  # 1-based
    scenario: str
    layout: str
    text: str

    @property
    def track_id(self) -> str:
        return f"{self.scenario}/{self.layout}/track_{self.number:05d}"


# ----------------------------------------------------------------------------------------------- plate text


def random_plate_text(rng: np.random.Generator, layout: str) -> str:
    """A uniformly random plate text that fits `layout` (LLLNNNN or LLLNLNN)."""
    pattern = LAYOUT_PATTERNS[canonical_layout(layout)]
    return "".join(
        (LETTERS if slot == "L" else DIGITS)[int(rng.integers(26 if slot == "L" else 10))] for slot in pattern
    )


# ------------------------------------------------------------------------------------------- plate drawing


@functools.cache
def plate_font_path(style: str = "standard") -> Path:
    """The bold font of plate art `style` (a PLATE_ART key) from matplotlib's data folder (standard: condensed cut
    first, should a release ship one). Keyed by art, like every glyph cache below, so no two arts share a glyph."""
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for name in PLATE_ART[style].fonts:
        if (folder / name).is_file():
            return folder / name
    raise UserError(
        f"{folder}: no {' or '.join(PLATE_ART[style].fonts)} found (it ships with matplotlib; reinstall matplotlib)"
    )


@functools.cache
def _glyph_source(text: str, style: str = "standard") -> Image.Image:
    """`text` rasterised once at GLYPH_POINTS, cropped to its ink; every size is resampled from it."""
    font = ImageFont.truetype(str(plate_font_path(style)), GLYPH_POINTS)
    left, top, right, bottom = font.getbbox(text)
    canvas = Image.new("L", (int(right - left), int(bottom - top)), 0)  # whole pixels: no stroke width
    ImageDraw.Draw(canvas).text((-left, -top), text, font=font, fill=255)
    return canvas


@functools.lru_cache(maxsize=2048)
def _text_mask(text: str, height: int, max_width: int, style: str = "standard") -> Image.Image:
    """Alpha mask of `text`, `height` px tall, squeezed horizontally when wider than `max_width`."""
    source = _glyph_source(text, style)
    width = min(max_width, round(source.width * height / source.height))
    return source.resize((max(1, width), max(1, height)), Image.Resampling.LANCZOS)


def _paste_text(
    image: Image.Image,
    text: str,
    box: tuple[float, float, float, float],
    colour: tuple[int, int, int],
    style: str = "standard",
) -> None:
    """Draw `text` as tall as `box`, centred in it, never wider than it."""
    x0, y0, x1, y1 = box
    mask = _text_mask(text, round(y1 - y0), round(x1 - x0), style)
    image.paste(colour, (round((x0 + x1 - mask.width) / 2), round(y0)), mask)


@functools.lru_cache(maxsize=64)
def _plate_condensation(height: int, cell_width: int, style: str = "standard") -> float:
    """One horizontal squeeze for the whole charset at this cell size: the one that makes the median glyph fill
    its cell. Squeezing each glyph to its own cell instead left narrow glyphs (I, 1, J) at full stroke weight
    beside squeezed ones, so at plate resolution an I was a solid block."""
    sources = [_glyph_source(char, style) for char in CHARSET]
    widths = sorted(source.width * height / source.height for source in sources)
    return min(1.0, cell_width / widths[len(widths) // 2])


@functools.lru_cache(maxsize=2048)
def _glyph_mask(char: str, height: int, cell_width: int, style: str = "standard") -> Image.Image:
    """Alpha mask of one plate character `height` px tall, condensed like every other glyph of the charset and
    never wider than its cell (the widest, W and M, are squeezed a little more)."""
    source = _glyph_source(char, style)
    natural = source.width * height / source.height
    width = min(cell_width, round(natural * _plate_condensation(height, cell_width, style)))
    return source.resize((max(1, width), max(1, height)), Image.Resampling.LANCZOS)


def _draw_characters(
    image: Image.Image,
    text: str,
    box: tuple[float, float, float, float],
    ink: tuple[int, int, int],
    separator: bool,
    style: str = "standard",
) -> None:
    """The seven plate characters in equal cells; old Brazilian plates get a dash between letters and digits."""
    x0, y0, x1, y1 = box
    separator_units = 0.6 if separator else 0.0
    cell = (x1 - x0) / (len(text) + separator_units)
    x = x0
    for position, char in enumerate(text):
        if separator and position == 3:
            dash_half_height = (y1 - y0) * 0.05
            middle = (y0 + y1) / 2
            ImageDraw.Draw(image).rectangle(
                [x + cell * 0.1, middle - dash_half_height, x + cell * 0.5, middle + dash_half_height], fill=ink
            )
            x += cell * separator_units
        mask = _glyph_mask(char, round(y1 - y0), round(cell * PLATE_ART[style].glyph_fill), style)
        image.paste(ink, (round(x + (cell - mask.width) / 2), round(y0)), mask)
        x += cell


def _jitter_colour(rng: np.random.Generator, colour: Sequence[float], spread: float) -> tuple[int, int, int]:
    values = np.clip(np.asarray(colour, dtype=float) + rng.uniform(-spread, spread, 3), 0, 255)
    return tuple(int(round(v)) for v in values)  # type: ignore[return-value]


def _border(image: Image.Image, colour: tuple[int, int, int], art: PlateArt) -> None:
    width, height = image.size
    ImageDraw.Draw(image).rounded_rectangle(
        [0, 0, width - 1, height - 1],
        radius=round(height * 0.07),
        outline=colour,
        width=max(2, round(height * art.border)),
    )


def _scaled_box(box: tuple[float, float, float, float], size: tuple[int, int]) -> tuple[float, float, float, float]:
    """A box given as shares of the plate, in pixels of a plate of `size` (H, W)."""
    height, width = size
    return width * box[0], height * box[1], width * box[2], height * box[3]


def _brazilian_plate(text: str, size: tuple[int, int], rng: np.random.Generator, style: str) -> Image.Image:
    """Grey pre-2018 plate: dark characters 'ABC-1234', city line on top between two rivet holes."""
    art = PLATE_ART[style]
    height, width = size
    grey = rng.uniform(*art.brazilian_grey)
    background = _jitter_colour(rng, (grey, grey, grey - 3), 5)
    ink = _jitter_colour(rng, (34, 34, 36), 10)
    image = Image.new("RGB", (width, height), background)
    city = CITY_LINES[int(rng.integers(len(CITY_LINES)))]
    _paste_text(image, city, (width * 0.2, height * 0.08, width * 0.8, height * 0.22), ink, style)
    hole = tuple(int(v * 0.55) for v in background)
    for centre in (width * 0.1, width * 0.9):
        radius = height * 0.045
        ImageDraw.Draw(image).ellipse(
            [centre - radius, height * 0.15 - radius, centre + radius, height * 0.15 + radius], fill=hole
        )
    _draw_characters(image, text, _scaled_box(art.brazilian_chars, size), ink, separator=True, style=style)
    _border(image, ink, art)
    return image


def _flag(image: Image.Image, box: tuple[float, float, float, float]) -> None:
    """A tiny Brazilian flag: green field, yellow rhombus, blue disc."""
    x0, y0, x1, y1 = box
    draw = ImageDraw.Draw(image)
    draw.rectangle([x0, y0, x1, y1], fill=(0, 150, 60))
    mx, my, dx, dy = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * 0.42, (y1 - y0) * 0.4
    draw.polygon([(mx - dx, my), (mx, my - dy), (mx + dx, my), (mx, my + dy)], fill=(250, 215, 0))
    radius = (y1 - y0) * 0.22
    draw.ellipse([mx - radius, my - radius, mx + radius, my + radius], fill=(20, 40, 140))


def _mercosur_plate(text: str, size: tuple[int, int], rng: np.random.Generator, style: str) -> Image.Image:
    """White Mercosur plate: blue top band with 'BRASIL', a flag and the bloc emblem; black 'ABC1D23'."""
    art = PLATE_ART[style]
    height, width = size
    background = _jitter_colour(rng, art.mercosur_paper, 6)
    ink = _jitter_colour(rng, (16, 16, 18), 8)
    image = Image.new("RGB", (width, height), background)
    band = height * art.mercosur_band
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, width, band], fill=_jitter_colour(rng, art.mercosur_blue, 10))
    white = (250, 250, 250)
    _paste_text(image, "BRASIL", (width * 0.3, band * 0.22, width * 0.7, band * 0.78), white, style)
    _flag(image, (width * 0.87, band * 0.2, width * 0.95, band * 0.8))
    radius = band * 0.28
    centre_x, centre_y = width * 0.08, band / 2
    draw.ellipse(
        [centre_x - radius, centre_y - radius, centre_x + radius, centre_y + radius],
        outline=white,
        width=max(1, round(radius * 0.3)),
    )
    _draw_characters(image, text, _scaled_box(art.mercosur_chars, size), ink, separator=False, style=style)
    _border(image, ink, art)
    return image


def _weather(image: Image.Image, rng: np.random.Generator, art: PlateArt) -> Image.Image:
    """Low-frequency dirt and fading, so no two plates are flat copies of one template."""
    field = rng.uniform(art.stain, 1.0, size=(3, 9)).astype(np.float32)
    stain = np.asarray(Image.fromarray(field).resize(image.size, Image.Resampling.BICUBIC))
    if art.brushed:
        stain = stain * _brushed_metal(rng, image.size, art.brushed)
    pixels = np.asarray(image, dtype=np.float32) * stain[..., None]
    return Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8))


def _brushed_metal(rng: np.random.Generator, size: tuple[int, int], strength: float) -> np.ndarray:
    """Thin horizontal streaks (a texture no standard plate has), as a brightness factor around 1."""
    width, height = size
    streaks = rng.normal(0, strength, size=(height, 12)).astype(np.float32)
    return 1 + np.asarray(Image.fromarray(streaks).resize((width, height), Image.Resampling.BILINEAR))


def _draw_plate(
    text: str, layout: str, size: tuple[int, int], rng: np.random.Generator, style: str = "standard"
) -> Image.Image:
    """A frontal plate exactly `size` (H, W) pixels, drawn at that size."""
    layout = canonical_layout(layout)
    problem = layout_problem(text, layout)
    if problem:
        raise ValueError(problem)
    draw = _brazilian_plate if layout == "Brazilian" else _mercosur_plate
    return _weather(draw(text, size, rng, style), rng, PLATE_ART[style])


def render_plate(
    text: str, layout: str, size: tuple[int, int], rng: np.random.Generator, style: str = "standard"
) -> Image.Image:
    """A clean, frontal plate of `size` (H, W): drawn at 4x and downsampled for crisp small strokes."""
    height, width = size
    master = _draw_plate(text, layout, (height * SUPERSAMPLE, width * SUPERSAMPLE), rng, style)
    return master.resize((width, height), Image.Resampling.LANCZOS)


# ------------------------------------------------------------------------------------------ scene geometry


def _rotate_scale(quad: np.ndarray, angle_deg: float, scale: float, shift: np.ndarray) -> np.ndarray:
    """Rotate and scale `quad` about its centroid, then move it by `shift`."""
    centre = quad.mean(axis=0)
    angle = np.deg2rad(angle_deg)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return (quad - centre) @ rotation.T * scale + centre + shift


def _track_quad(rng: np.random.Generator, canvas: tuple[int, int], plate: tuple[int, int]) -> np.ndarray:
    """The track's nominal plate corners (TL, TR, BR, BL) on the canvas: a slight yaw/pitch, tilt and offset."""
    canvas_h, canvas_w = canvas
    half_h, half_w = plate[0] / 2, plate[1] / 2
    yaw, pitch = rng.uniform(-0.07, 0.07), rng.uniform(-0.04, 0.04)
    quad = np.array(
        [
            [-half_w * (1 - pitch), -half_h * (1 - yaw)],
            [half_w * (1 - pitch), -half_h * (1 + yaw)],
            [half_w * (1 + pitch), half_h * (1 + yaw)],
            [-half_w * (1 + pitch), half_h * (1 - yaw)],
        ]
    )
    quad += np.array([canvas_w / 2, canvas_h / 2])
    offset = rng.uniform(-0.025, 0.025, 2) * np.array([canvas_w, canvas_h])
    return _fit_inside(_rotate_scale(quad, rng.uniform(-3.0, 3.0), rng.uniform(0.93, 1.0), offset), canvas)


def _fit_inside(quad: np.ndarray, canvas: tuple[int, int], margin: float = 0.04) -> np.ndarray:
    """Shrink and shift `quad` so it keeps a margin inside the canvas: a detector crop holds the whole plate."""
    dims = np.array([canvas[1], canvas[0]], dtype=float)
    low, high = dims * margin, dims * (1 - margin)
    shrink = min(1.0, float(np.min((high - low) / (quad.max(axis=0) - quad.min(axis=0)))))
    quad = _rotate_scale(quad, 0.0, shrink, np.zeros(2))
    return quad + np.maximum(low - quad.min(axis=0), 0) + np.minimum(high - quad.max(axis=0), 0)


def _frame_quad(base: np.ndarray, rng: np.random.Generator, canvas: tuple[int, int], zoom: float) -> np.ndarray:
    """One frame's corners: the track pose plus a small shift, turn, zoom and independent corner jitter."""
    dims = np.array([canvas[1], canvas[0]], dtype=float)
    quad = _rotate_scale(base, rng.normal(0, 0.7), zoom * rng.uniform(0.985, 1.015), rng.normal(0, 0.008, 2) * dims)
    return quad + rng.normal(0, 0.006, (4, 2)) * dims


def _perspective_coefficients(quad: np.ndarray, width: int, height: int) -> tuple[float, ...]:
    """PIL's PERSPECTIVE maps output (x, y) to input; solve the 8 numbers sending `quad` to the plate rectangle."""
    source = [(0, 0), (width, 0), (width, height), (0, height)]
    rows, rhs = [], []
    for (x, y), (u, v) in zip(quad, source):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    return tuple(float(c) for c in np.linalg.solve(np.array(rows, dtype=float), np.array(rhs, dtype=float)))


def _car_body(rng: np.random.Generator, canvas: tuple[int, int]) -> Image.Image:
    """The vehicle around the plate: a body colour with a vertical light gradient and a bumper crease."""
    height, width = canvas
    colour = np.asarray(CAR_COLOURS[int(rng.choice(len(CAR_COLOURS), p=CAR_COLOUR_WEIGHTS))], dtype=np.float32)
    colour *= rng.uniform(0.8, 1.1)
    ys = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    shade = 1 + rng.uniform(-0.35, 0.35) * ys
    crease_y = rng.uniform(-0.5, 0.5)
    shade = shade * (1 - 0.35 * np.exp(-(((ys - crease_y) / 0.03) ** 2)))
    pixels = np.broadcast_to(shade[..., None] * colour, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8))


def _place_plate(
    background: Image.Image, plate: Image.Image, quad: np.ndarray, holder: tuple[int, int, int]
) -> Image.Image:
    """Warp `plate` onto `quad` over `background`, inside a plate holder of colour `holder` just around it."""
    scene = background.copy()
    recess = _rotate_scale(quad, 0.0, 1.035, np.zeros(2))
    ImageDraw.Draw(scene).polygon([tuple(p) for p in recess], fill=holder)
    coefficients = _perspective_coefficients(quad, plate.width, plate.height)
    # One RGBA warp carries its own coverage mask; bilinear suffices as the 4x scene is Lanczos-downsampled.
    warped = plate.transform(scene.size, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BILINEAR)
    scene.paste(warped, (0, 0), warped)
    return scene


# -------------------------------------------------------------------------------------- lighting and noise


@dataclass(frozen=True)
class _Lighting:
    """Gain, contrast, a linear illumination slope and a colour cast."""

    gain: float
    contrast: float
    slope: tuple[float, float]  # brightness change across x and y
    tint: tuple[float, float, float]

    @classmethod
    def draw(cls, rng: np.random.Generator, spread: float) -> _Lighting:
        """Random lighting; `spread` 1 is a whole scene's range (dusk to noon), small values frame-to-frame flicker."""
        gain = float(rng.uniform(1 - 0.25 * spread, 1 + 0.12 * spread))
        contrast = float(rng.uniform(1 - 0.25 * spread, 1 + 0.1 * spread))
        slope = (float(rng.uniform(-0.2, 0.2) * spread), float(rng.uniform(-0.15, 0.15) * spread))
        red, green, blue = (float(t) for t in rng.uniform(1 - 0.04 * spread, 1 + 0.04 * spread, 3))
        return cls(gain, contrast, slope, (red, green, blue))

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        height, width = pixels.shape[:2]
        xs = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
        ys = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
        light = self.gain * (1 + self.slope[0] * xs + self.slope[1] * ys)
        toned = (pixels - 128.0) * self.contrast + 128.0
        return toned * light[..., None] * np.asarray(self.tint, dtype=np.float32)


def _to_image(pixels: np.ndarray, rng: np.random.Generator, noise_sigma: float) -> Image.Image:
    """Add Gaussian sensor noise and quantise to an 8-bit RGB image."""
    noisy = pixels + rng.normal(0, noise_sigma, pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8))


def _jpeg_roundtrip(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def degrade(hr: Image.Image, scale: int, rng: np.random.Generator, style: str = "standard") -> Image.Image:
    """The LR view of one HR frame: optical blur, bicubic down-scale, light change, sensor noise, JPEG; the
    heldout style has its own, harsher chain (`_degrade_heldout`)."""
    if style == "heldout":
        return _degrade_heldout(hr, scale, rng)
    if style == "varied":
        return _degrade_varied(hr, scale, rng)
    sigma = rng.uniform(0.35, 0.9) * scale / 2
    small = hr.filter(ImageFilter.GaussianBlur(sigma)).resize(
        (hr.width // scale, hr.height // scale), Image.Resampling.BICUBIC
    )
    pixels = _Lighting.draw(rng, 0.35).apply(np.asarray(small, dtype=np.float32))
    noisy = _to_image(pixels, rng, rng.uniform(1.5, 5.0))
    return _jpeg_roundtrip(noisy, int(rng.integers(35, 80)))


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised line of `length` pixels through the centre of an odd-sized kernel at `angle` radians, drawn by
    bilinear splatting of points along it, so sub-pixel lengths and any angle give a smooth kernel."""
    centre = int(np.ceil(length / 2)) + 1
    kernel = np.zeros((2 * centre + 1, 2 * centre + 1), dtype=np.float32)
    for t in np.linspace(-0.5, 0.5, max(2, int(np.ceil(length * 4)))):
        x, y = centre + t * length * np.cos(angle), centre + t * length * np.sin(angle)
        col, row = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - col, y - row
        kernel[row : row + 2, col : col + 2] += np.array(
            [[(1 - fx) * (1 - fy), fx * (1 - fy)], [(1 - fx) * fy, fx * fy]], dtype=np.float32
        )
    return kernel / kernel.sum()


def _convolve(pixels: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """`pixels` (H, W, C) filtered by a small odd-sized, point-symmetric `kernel`, edges replicated: a sum of
    shifted copies, so no scipy."""
    half = kernel.shape[0] // 2
    padded = np.pad(pixels, ((half, half), (half, half), (0, 0)), mode="edge")
    height, width = pixels.shape[:2]
    out = np.zeros_like(pixels)
    for row, col in zip(*np.nonzero(kernel)):
        out += kernel[row, col] * padded[row : row + height, col : col + width]
    return out


def _motion_blur(image: Image.Image, rng: np.random.Generator, length: float) -> np.ndarray:
    """The camera or vehicle moving during the exposure: a line blur at a random angle."""
    kernel = _motion_kernel(length, rng.uniform(0, np.pi))
    return _convolve(np.asarray(image, dtype=np.float32), kernel)


def _sensor_noise(pixels: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Stronger noise shaped unlike the standard one: mostly shared by the three channels (luminance grain),
    with some chroma noise on top."""
    height, width = pixels.shape[:2]
    grain = rng.normal(0, rng.uniform(2.0, 5.0), (height, width, 1))
    chroma = rng.normal(0, rng.uniform(1.0, 2.5), (height, width, 3))
    noisy = pixels + (grain + chroma).astype(np.float32)
    return Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8))


def _degrade_heldout(hr: Image.Image, scale: int, rng: np.random.Generator) -> Image.Image:
    """The heldout LR chain: motion blur of 0.5-1.2 LR pixels, area (BOX) down-scaling instead of bicubic,
    stronger light flicker, luminance-heavy noise and JPEG at quality 15-40."""
    blurred = _motion_blur(hr, rng, rng.uniform(0.5, 1.2) * scale)
    sharp = Image.fromarray(np.clip(blurred, 0, 255).round().astype(np.uint8))
    small = sharp.resize((hr.width // scale, hr.height // scale), Image.Resampling.BOX)
    pixels = _Lighting.draw(rng, 0.5).apply(np.asarray(small, dtype=np.float32))
    return _jpeg_roundtrip(_sensor_noise(pixels, rng), int(rng.integers(15, 41)))


# Down-scaling filters a camera pipeline or a resizing tool may apply; the varied chain draws one per frame.
DOWNSCALE_FILTERS = (
    Image.Resampling.BICUBIC,
    Image.Resampling.BILINEAR,
    Image.Resampling.BOX,
    Image.Resampling.LANCZOS,
)


def _degrade_varied(hr: Image.Image, scale: int, rng: np.random.Generator) -> Image.Image:
    """A randomised LR chain: no blur, a Gaussian or a motion blur of random width; any of four down-scaling
    filters; lighting flicker; noise; JPEG at quality 20-90. Each frame draws its own chain."""
    kind = rng.choice(3, p=(0.2, 0.5, 0.3))
    if kind == 1:
        hr = hr.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 1.1) * scale / 2))
    elif kind == 2:
        blurred = _motion_blur(hr, rng, rng.uniform(0.3, 1.0) * scale)
        hr = Image.fromarray(np.clip(blurred, 0, 255).round().astype(np.uint8))
    resample = DOWNSCALE_FILTERS[int(rng.integers(len(DOWNSCALE_FILTERS)))]
    small = hr.resize((hr.width // scale, hr.height // scale), resample)
    pixels = _Lighting.draw(rng, 0.45).apply(np.asarray(small, dtype=np.float32))
    return _jpeg_roundtrip(_to_image(pixels, rng, rng.uniform(1.0, 6.0)), int(rng.integers(20, 91)))


def _has_scene_tone(style: str, rng: np.random.Generator) -> bool:
    """Heldout scenes always carry a colour cast and shadow, varied ones half the time, standard ones never."""
    return style == "heldout" or (style == "varied" and bool(rng.uniform() < 0.5))


def _scene_tone(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """The heldout scene's colour cast times a soft shadow over part of the crop, as an (H, W, 3) factor. It
    belongs to the scene, so the HR frames carry it and the LR frames inherit it from them."""
    return _shadow(rng, size)[..., None] * _colour_cast(rng)


def _colour_cast(rng: np.random.Generator) -> np.ndarray:
    """Per-channel gains along the warm-cool axis (sodium lamps, shade, a wrong white balance) with a slight
    green-magenta tint, as real casts go: up to about 25 % between red and blue."""
    warmth, tint = rng.uniform(-0.12, 0.12), rng.uniform(-0.04, 0.04)
    return np.array([1 + warmth, 1 + tint, 1 - warmth], dtype=np.float32)


def _shadow(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A soft-edged shadow: either everything past a straight edge, or a band, at a random angle and place."""
    height, width = size
    xs = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :] * (width / height)
    ys = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    angle = rng.uniform(0, 2 * np.pi)
    distance = xs * np.cos(angle) + ys * np.sin(angle) - rng.uniform(-0.6, 0.6)
    softness = rng.uniform(0.04, 0.2)
    if rng.uniform() < 0.5:
        covered = 1 / (1 + np.exp(-distance / softness))
    else:
        covered = np.exp(-((distance / rng.uniform(0.15, 0.4)) ** 2) * 2)
    return (1 - rng.uniform(0.2, 0.45) * covered).astype(np.float32)


# ------------------------------------------------------------------------------------------------- tracks


def _plate_size(hr_size: tuple[int, int]) -> tuple[int, int]:
    """The supersampled plate master (H, W): PLATE_FILL of the crop width, or less where the crop is flat."""
    canvas_h, canvas_w = hr_size[0] * SUPERSAMPLE, hr_size[1] * SUPERSAMPLE
    width = min(canvas_w * PLATE_FILL, canvas_h * 0.86 * PLATE_ASPECT)
    return round(width / PLATE_ASPECT), round(width)


def render_hr_frames(
    text: str, layout: str, cfg: SynthConfig, rng: np.random.Generator
) -> tuple[list[Image.Image], list[np.ndarray]]:
    """The HR frames of one track and each frame's plate corners (TL, TR, BR, BL) in HR pixels."""
    canvas = (cfg.hr_size[0] * SUPERSAMPLE, cfg.hr_size[1] * SUPERSAMPLE)
    art = VARIED_ARTS[int(rng.integers(len(VARIED_ARTS)))] if cfg.style == "varied" else cfg.style
    plate = _draw_plate(text, layout, _plate_size(cfg.hr_size), rng, art).convert("RGBA")
    body = _car_body(rng, canvas)
    base = _track_quad(rng, canvas, (plate.height, plate.width))
    holder = _jitter_colour(rng, (rng.uniform(18, 70),) * 3, 3)  # dark grey plate holder
    track_light = _Lighting.draw(rng, 1.0)
    tone = _scene_tone(rng, cfg.hr_size) if _has_scene_tone(cfg.style, rng) else None
    zoom_per_frame = rng.uniform(-0.006, 0.006)  # the vehicle drifts closer or away over the track
    hr_wh = (cfg.hr_size[1], cfg.hr_size[0])
    frames, corners = [], []
    for index in range(cfg.frames):
        quad = _frame_quad(base, rng, canvas, 1 + zoom_per_frame * index)
        scene = _place_plate(body, plate, quad, holder).resize(hr_wh, Image.Resampling.LANCZOS)
        pixels = track_light.apply(_Lighting.draw(rng, 0.3).apply(np.asarray(scene, dtype=np.float32)))
        if tone is not None:
            pixels = pixels * tone
        frames.append(_to_image(pixels, rng, rng.uniform(0.5, 2.0)))
        corners.append(quad / SUPERSAMPLE)
    return frames, corners


def _corner_list(quad: np.ndarray) -> list[list[float]]:
    return [[round(float(x), 2), round(float(y), 2)] for x, y in quad]


def render_track(
    text: str, layout: str, cfg: SynthConfig, rng: np.random.Generator
) -> tuple[list[Image.Image], list[Image.Image], dict[str, list[list[float]]]]:
    """HR frames, their LR degradations (pair by pair) and every image's plate corners keyed by file name."""
    hr_frames, hr_quads = render_hr_frames(text, layout, cfg, rng)
    lr_frames = [degrade(frame, cfg.scale, rng, cfg.style) for frame in hr_frames]
    corners: dict[str, list[list[float]]] = {}
    for number, quad in enumerate(hr_quads, start=1):
        corners[f"hr-{number:03d}.png"] = _corner_list(quad)
        corners[f"lr-{number:03d}.png"] = _corner_list(quad / cfg.scale)
    return hr_frames, lr_frames, corners


def track_rng(seed: int, index: int) -> np.random.Generator:
    """The private random stream of track `index` (0-based)."""
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def plan_track(cfg: SynthConfig, index: int) -> tuple[TrackPlan, np.random.Generator]:
    """Scenario, layout and text of track `index`, and its stream positioned for rendering."""
    rng = track_rng(cfg.seed, index)
    scenario = SCENARIOS[int(rng.integers(len(SCENARIOS)))]
    coin = ("Brazilian", "Mercosur")[int(rng.integers(2))]  # drawn for every layout so streams stay aligned
    layout = coin if cfg.layout == "mixed" else canonical_layout(cfg.layout)
    return TrackPlan(index + 1, scenario, layout, random_plate_text(rng, layout)), rng


def _write_track(root: Path, plan: TrackPlan, cfg: SynthConfig, rng: np.random.Generator) -> None:
    hr_frames, lr_frames, corners = render_track(plan.text, plan.layout, cfg, rng)
    folder = root / plan.track_id
    folder.mkdir(parents=True)
    for number, (hr, lr) in enumerate(zip(hr_frames, lr_frames), start=1):
        hr.save(folder / f"hr-{number:03d}.png", format="PNG")
        lr.save(folder / f"lr-{number:03d}.png", format="PNG")
    annotation = {"plate_text": plan.text, "plate_layout": plan.layout, "corners": corners}
    if cfg.style != "standard":  # readers ignore extra keys; standard annotations stay as they always were
        annotation["style"] = cfg.style
    (folder / "annotations.json").write_text(json.dumps(annotation, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------------------- splits


def split_counts(total: int, ratios: Sequence[float]) -> tuple[int, int, int]:
    """Tracks per split by largest remainder; from 3 tracks on, every split with a positive ratio gets one."""
    raw = np.asarray(ratios, dtype=float) * total
    counts = np.floor(raw).astype(int)
    for index in np.argsort(-(raw - counts), kind="stable")[: total - int(counts.sum())]:
        counts[index] += 1
    if total >= len(SPLITS):
        for index, ratio in enumerate(ratios):
            if ratio > 0 and counts[index] == 0:
                counts[int(np.argmax(counts))] -= 1
                counts[index] = 1
    return int(counts[0]), int(counts[1]), int(counts[2])


def assign_splits(plans: Sequence[TrackPlan], cfg: SynthConfig) -> dict[str, str]:
    """Track id -> split, shuffled by a stream of its own (spawn key 1) so it never collides with a track's."""
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, len(plans)], spawn_key=(1,)))
    order = rng.permutation(len(plans))
    names = np.repeat(np.array(SPLITS), split_counts(len(plans), cfg.split_ratios))
    return {plans[int(position)].track_id: str(name) for position, name in zip(order, names)}


def _write_split_file(root: Path, splits: dict[str, str], cfg: SynthConfig) -> None:
    ratios = "/".join(f"{r:g}" for r in cfg.split_ratios)
    kind = "synthetic plates" if cfg.style == "standard" else f"synthetic plates ({cfg.style} style)"
    lines = [f"# <track> <split>: {kind}, seed {cfg.seed}, train/val/test ratios {ratios}"]
    lines += [f"{track_id} {splits[track_id]}" for track_id in sorted(splits)]
    (root / "split.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------------------- dataset folder


def _with_progress(items: Sequence[int], enabled: bool) -> Iterable[int]:
    if not enabled:
        return items
    from rich.console import Console
    from rich.progress import track

    return track(items, description="rendering plate tracks", total=len(items), console=Console(stderr=True))


def render_dataset(
    out_dir: str | Path, cfg: SynthConfig, overwrite: bool = False, progress: bool = False
) -> SynthSummary:
    """Write `cfg.tracks` tracks and split.txt to `out_dir`, all or nothing (built beside it, then renamed)."""
    plans = []
    with atomic_directory(out_dir, overwrite=overwrite) as staging:
        for index in _with_progress(range(cfg.tracks), progress):
            plan, rng = plan_track(cfg, index)
            _write_track(staging, plan, cfg, rng)
            plans.append(plan)
        splits = {plan.track_id: "test" for plan in plans} if cfg.test_only else assign_splits(plans, cfg)
        if not cfg.test_only:
            _write_split_file(staging, splits, cfg)
    layouts = {name: sum(plan.layout == name for plan in plans) for name in LAYOUT_PATTERNS}
    split_sizes = {name: sum(split == name for split in splits.values()) for name in SPLITS}
    return SynthSummary(Path(out_dir), len(plans), len(plans) * cfg.frames * 2, layouts, split_sizes)
