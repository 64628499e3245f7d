"""TensorBoard events (tensorboardX) with the seed's tags: `stage<k>_<name>/<metric>`, and the images they show:
the labelled LR|SR|HR strip of distinct validation plates and the character confusion matrix with its scale."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch


class StageEventWriter:
    """Rank 0 writes; other ranks get a writer that records nothing (so call sites need no rank checks)."""

    def __init__(self, log_dir: str | Path | None, prefix: str):
        self.prefix = prefix
        self._writer = None
        if log_dir is not None:
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(str(log_dir), flush_secs=10)

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self._writer is None:
            return
        for name, value in values.items():
            self._writer.add_scalar(f"{self.prefix}/{name}", float(value), step)

    def scalar_group(self, name: str, values: dict[str, float], step: int) -> None:
        """A family of scalars under one tag (e.g. `hard_mining_stats`)."""
        if self._writer is None:
            return
        for key, value in values.items():
            self._writer.add_scalar(f"{self.prefix}/{name}/{key}", float(value), step)
        self._writer.add_text(f"{self.prefix}/{name}", ", ".join(f"{k}={v:.4g}" for k, v in values.items()), step)

    def image(self, name: str, image: np.ndarray | torch.Tensor, step: int) -> None:
        """An HWC uint8 array or a CHW float tensor in [0, 1]."""
        if self._writer is None:
            return
        if isinstance(image, torch.Tensor):
            self._writer.add_image(f"{self.prefix}/{name}", image.detach().float().clamp(0, 1).cpu(), step)
        else:
            self._writer.add_image(f"{self.prefix}/{name}", image, step, dataformats="HWC")

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


STRIP_HEADERS = ("LR (bicubic)", "SR", "HR")
_GAP = 6  # pixels between columns and around the strip
_INK, _RIGHT, _WRONG, _PAPER = (20, 20, 20), (0, 110, 0), (190, 0, 0), (255, 255, 255)


@lru_cache(maxsize=4)
def _font(size: int):
    """DejaVu Sans from matplotlib's own fonts (always installed with it); PIL's default if it is missing."""
    from PIL import ImageFont

    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    except (ImportError, OSError):
        return ImageFont.load_default()


def _rgb(image: torch.Tensor) -> torch.Tensor:
    image = image.detach().float().cpu().clamp(0, 1)
    return image.expand(3, -1, -1) if image.shape[0] == 1 else image[:3]


def first_frame_per_track(track_ids: Sequence[Hashable], limit: int, seen: set | None = None) -> list[int]:
    """Indices of the first frame of each track not in `seen`, at most `limit`: validation batches hold a
    track's frames in a row, so the first few frames of a batch are all one plate."""
    seen = set() if seen is None else seen
    if isinstance(track_ids, torch.Tensor):  # numeric ids collated into a tensor: compare values, not tensors
        track_ids = track_ids.tolist()
    picked: list[int] = []
    for index, track in enumerate(track_ids):
        if len(picked) == limit:
            break
        if track not in seen:
            seen.add(track)
            picked.append(index)
    return picked


def strip_image(
    lr: torch.Tensor,
    sr: torch.Tensor,
    hr: torch.Tensor,
    texts: Sequence[str] | None = None,
    reads: Sequence[str] | None = None,
    scale: int = 3,
) -> torch.Tensor:
    """LR | SR | HR of every plate given, one row each, as a CHW float image in [0, 1] for TensorBoard.

    LR is brought to the HR size the bicubic way (the baseline SR must beat), then every cell is magnified
    `scale` times (nearest: pixels stay pixels) so a 32x96 plate is read without zooming. Column headers
    name the images; each row is captioned with its plate text and what the OCR read (green right, red wrong).
    """
    from PIL import Image, ImageDraw

    height, width = hr.shape[-2] * scale, hr.shape[-1] * scale
    lr_up = torch.nn.functional.interpolate(
        lr.detach().float().cpu(), size=hr.shape[-2:], mode="bicubic", align_corners=False
    )
    header_font, caption_font = _font(16), _font(13)
    header, caption = 26, 20 if texts is not None or reads is not None else 0
    row_height = caption + height + _GAP
    canvas = Image.new("RGB", (3 * width + 4 * _GAP, header + len(hr) * row_height + _GAP), _PAPER)
    draw = ImageDraw.Draw(canvas)
    for column, title in enumerate(STRIP_HEADERS):
        centre = _GAP + column * (width + _GAP) + width // 2
        draw.text((centre, header // 2), title, fill=_INK, font=header_font, anchor="mm")
    for row in range(len(hr)):
        top = header + row * row_height
        if caption:
            truth = texts[row] if texts is not None else None
            read = reads[row] if reads is not None else None
            words = [f"{label} {value}" for label, value in (("plate", truth), ("OCR read", read)) if value is not None]
            colour = _INK if truth is None or read is None else (_RIGHT if read == truth else _WRONG)
            draw.text((_GAP, top + caption // 2), "   ".join(words), fill=colour, font=caption_font, anchor="lm")
        for column, image in enumerate((lr_up[row], sr[row], hr[row])):
            pixels = (_rgb(image).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            cell = Image.fromarray(pixels).resize((width, height), Image.Resampling.NEAREST)
            canvas.paste(cell, (_GAP + column * (width + _GAP), top + caption))
    return torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1).float().div_(255.0)


class PlateStrip:
    """The validation plates a strip shows: the first frame of up to `rows` distinct tracks, gathered over
    as many batches as it takes (a batch may hold a single track), kept on the CPU."""

    def __init__(self, rows: int = 4):
        self.rows = rows
        self._seen: set = set()
        self._picked: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, str, str | None]] = []

    @property
    def full(self) -> bool:
        return len(self._picked) >= self.rows

    def add(
        self,
        lr: torch.Tensor,
        sr: torch.Tensor,
        hr: torch.Tensor,
        track_ids: Sequence[Hashable],
        texts: Sequence[str],
        reads: Sequence[str] | None = None,
    ) -> None:
        for i in first_frame_per_track(track_ids, self.rows - len(self._picked), self._seen):
            self._picked.append(
                (
                    lr[i].detach().float().cpu(),
                    sr[i].detach().float().cpu(),
                    hr[i].detach().float().cpu(),
                    texts[i],
                    reads[i] if reads is not None else None,
                )
            )

    def image(self, scale: int = 3) -> torch.Tensor | None:
        if not self._picked:
            return None
        lr, sr, hr, texts, reads = zip(*self._picked)
        return strip_image(
            torch.stack(lr),
            torch.stack(sr),
            torch.stack(hr),
            list(texts),
            None if None in reads else list(reads),
            scale,
        )


def confusion_figure(matrix: torch.Tensor | np.ndarray, charset: Sequence[str]):
    """The row-normalised character confusion matrix (rows: true, columns: predicted) with its colour bar.

    A square-root colour scale keeps the rare confusions LCOFL weighs visible beside the bright diagonal;
    characters that never occurred are grey rather than looking never read right.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import PowerNorm

    counts = np.asarray(matrix, dtype=float)
    totals = counts.sum(1, keepdims=True)
    rates = np.ma.masked_invalid(np.divide(counts, totals, out=np.full_like(counts, np.nan), where=totals > 0))
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.85")
    fig, ax = plt.subplots(figsize=(7.2, 6.2), dpi=80)
    shown = ax.imshow(rates, cmap=cmap, norm=PowerNorm(0.5, vmin=0, vmax=1))
    ticks = range(len(charset))
    ax.set_xticks(ticks, list(charset), fontsize=7)
    ax.set_yticks(ticks, list(charset), fontsize=7)
    ax.set_xlabel("predicted character")
    ax.set_ylabel("true character")
    seen = counts.sum()
    misread = 1 - np.trace(counts) / seen if seen else 0.0
    ax.set_title(f"character confusion: {int(seen)} characters, {misread:.1%} misread")
    fig.colorbar(
        shown,
        ax=ax,
        fraction=0.046,
        pad=0.03,
        label="share of the true character's readings",
        ticks=[0, 0.01, 0.05, 0.1, 0.25, 0.5, 1],
    )
    fig.tight_layout()
    return fig


def figure_image(fig) -> np.ndarray:
    """A matplotlib figure as an HWC uint8 RGB array (what `StageEventWriter.image` takes); closes the figure."""
    import matplotlib.pyplot as plt

    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def confusion_image(matrix: torch.Tensor | np.ndarray, charset: Sequence[str]) -> np.ndarray:
    return figure_image(confusion_figure(matrix, charset))
