"""Frame files as they come: any mode decoded to 8-bit RGB, and sizes that look like data errors flagged.

Frames of any size are resized to the model's sizes, which is right for real crops (every plate crop differs a
little) but hides a mislabelled file: an LR frame larger than its HR, or a crop that is no plate shape at all.
Those are warned about (once per track) and counted by `lpasrn check-data`, never refused.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from experiments.errors import UserError

# Width / height of a plausible plate crop. Both Brazilian plates are 400 x 130 mm (3.1) and crops add margins
# and perspective; a frame outside this range by more than about a factor of two is unlikely to be a plate.
PLATE_ASPECT_RANGE = (1.5, 6.0)
_HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


@dataclass(frozen=True)
class EncodedFrame:
    """A frame file's bytes held in memory (a packed dataset's PNG/JPEG), named for messages like a path."""

    name: str  # where it came from, e.g. "s3://bucket/plates/shards/train-00000.parquet:<track>/lr-001.png"
    data: bytes

    def __str__(self) -> str:
        return self.name


FrameSource = Path | EncodedFrame


def _opened(source: FrameSource):
    return Image.open(io.BytesIO(source.data)) if isinstance(source, EncodedFrame) else Image.open(source)


def open_rgb(path: FrameSource) -> Image.Image:
    """The decoded frame (a file, or its bytes from a packed dataset) as 8-bit RGB. 16-bit grey PNGs are scaled to
    8 bits (PIL's own conversion clips them to white); palette, grey, alpha and CMYK frames go through PIL's
    conversion."""
    try:
        with _opened(path) as image:
            if image.mode in _HIGH_BIT_MODES:
                values = np.asarray(image, dtype=np.float64)
                peak = 65535.0 if image.mode != "I" or values.max() > 255 else 255.0
                grey = np.clip(np.round(values * (255.0 / peak)), 0, 255).astype(np.uint8)
                return Image.fromarray(grey, "L").convert("RGB")
            return image.convert("RGB")
    except FileNotFoundError:
        raise UserError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read image ({err.__class__.__name__}: {err})") from None


def frame_size_problem(lr_size: tuple[int, int], hr_size: tuple[int, int]) -> str | None:
    """Why an LR/HR pair of (width, height) sizes looks like a data error, or None when it looks like a plate."""
    (lr_w, lr_h), (hr_w, hr_h) = lr_size, hr_size
    if lr_w > hr_w or lr_h > hr_h:
        return f"LR frame {lr_h}x{lr_w} is larger than its HR frame {hr_h}x{hr_w} (height x width)"
    low, high = PLATE_ASPECT_RANGE
    for side, (width, height) in (("LR", lr_size), ("HR", hr_size)):
        if not low <= width / height <= high:
            return (
                f"{side} frame {height}x{width} (height x width) is far from a plate's shape "
                f"(width/height {width / height:.2f}, expected {low:g} to {high:g})"
            )
    return None


def image_size(path: FrameSource) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding the pixels."""
    try:
        with _opened(path) as image:
            return image.size
    except FileNotFoundError:
        raise UserError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read image ({err.__class__.__name__}: {err})") from None
