"""Contact sheet of a plate dataset: one row per track with its LR frame, HR frame and label.

Why: a glance at the pixels catches what statistics miss (swapped LR/HR, wrong layout, blank renders). Works
on synthetic and real datasets (.png or .jpg frames) and needs no dataset reader, only the folder layout

    ROOT/<scenario>/<layout>/<track>/{lr,hr}-NNN.{png,jpg} + annotations.json
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from experiments.errors import UserError
from experiments.io import atomic_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
PAD = 8  # pixels around and between cells
TEXT_POINTS = 16
TITLE_HEIGHT = 2 * PAD + TEXT_POINTS
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)


@dataclass(frozen=True)
class _Row:
    lr: Image.Image
    hr: Image.Image
    label: str


@functools.lru_cache(maxsize=1)
def _font() -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), TEXT_POINTS)


def _track_annotations(root: Path) -> list[Path]:
    if not root.is_dir():
        raise UserError(f"{root}: dataset folder not found")
    annotations = sorted(root.glob("*/*/*/annotations.json"))
    if not annotations:
        raise UserError(f"{root}: no tracks found (expected <scenario>/<layout>/<track>/annotations.json)")
    return annotations


def _spread(items: list[Path], count: int) -> list[Path]:
    """`count` items evenly spaced over the sorted list, so a big dataset shows every scenario and layout."""
    if len(items) <= count:
        return items
    return [items[int(i)] for i in np.unique(np.linspace(0, len(items) - 1, count).round().astype(int))]


def _frame_path(folder: Path, side: str, frame: int) -> Path:
    for suffix in IMAGE_SUFFIXES:
        path = folder / f"{side}-{frame:03d}{suffix}"
        if path.is_file():
            return path
    raise UserError(f"{folder}: missing {side}-{frame:03d}.png (or .jpg)")


def _open_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise UserError(f"{path}: cannot read image ({err})") from None


def _label(annotation: Path) -> str:
    try:
        data = json.loads(annotation.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{annotation}: cannot read annotations ({err})") from None
    if not isinstance(data, dict):
        raise UserError(f"{annotation}: expected a JSON object with plate_text and plate_layout")
    track = annotation.parent
    return f"{data.get('plate_text', '?')}  {data.get('plate_layout', '?')}  {track.parent.parent.name}/{track.name}"


def _load_row(annotation: Path, frame: int, scale_up: int) -> _Row:
    """LR blown up with nearest neighbour to the HR size, both times `scale_up`, so pixels stay visible."""
    folder = annotation.parent
    lr = _open_image(_frame_path(folder, "lr", frame))
    hr = _open_image(_frame_path(folder, "hr", frame))
    size = (hr.width * scale_up, hr.height * scale_up)
    return _Row(
        lr.resize(size, Image.Resampling.NEAREST), hr.resize(size, Image.Resampling.NEAREST), _label(annotation)
    )


def _compose(rows: list[_Row], title: str) -> Image.Image:
    """Title on top, then one row per track: LR | HR | label, cells as wide as the widest row's."""
    font = _font()
    lr_width = max(row.lr.width for row in rows)
    hr_width = max(row.hr.width for row in rows)
    label_width = max(round(font.getlength(row.label)) for row in rows)
    row_heights = [max(row.lr.height, row.hr.height, TEXT_POINTS) for row in rows]
    width = max(4 * PAD + lr_width + hr_width + label_width, 2 * PAD + round(font.getlength(title)))
    sheet = Image.new("RGB", (width, TITLE_HEIGHT + sum(row_heights) + PAD * (len(rows) + 1)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((PAD, PAD), title, font=font, fill=INK)
    top = TITLE_HEIGHT + PAD
    for row, height in zip(rows, row_heights):
        sheet.paste(row.lr, (PAD, top))
        sheet.paste(row.hr, (2 * PAD + lr_width, top))
        draw.text((3 * PAD + lr_width + hr_width, top + (height - TEXT_POINTS) // 2), row.label, font=font, fill=INK)
        top += height + PAD
    return sheet


def make_contact_sheet(
    root: str | Path, out: str | Path, max_tracks: int = 24, frame: int = 1, scale_up: int = 3
) -> Path:
    """Write a PNG contact sheet of up to `max_tracks` tracks of the dataset at `root`; returns its path."""
    for name, value in (("--max-tracks", max_tracks), ("--frame", frame), ("--scale-up", scale_up)):
        if value < 1:
            raise UserError(f"{name} must be at least 1 (got {value})")
    root, out = Path(root), Path(out)
    annotations = _track_annotations(root)
    shown = _spread(annotations, max_tracks)
    rows = [_load_row(annotation, frame, scale_up) for annotation in shown]
    title = f"{root}: {len(shown)} of {len(annotations)} tracks, frame {frame} (LR | HR, x{scale_up})"
    sheet = _compose(rows, title)
    with atomic_path(out) as tmp:
        sheet.save(tmp, format="PNG")
    return out
