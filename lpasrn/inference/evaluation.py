"""Evaluation and inference with an inference bundle.

`evaluate` reads the same plates three ways with the same OCR: the generator's SR image, the bicubic
up-scaled LR (what you get without super-resolution) and the HR image (the ceiling), so the gain from
super-resolution is plain. With `lr_ocr`, a fourth row reads the bicubic LR with an OCR trained on LR frames
(stage 0 with `ocr_input: lr`): the OCR-only baseline that super-resolution must beat to be worth its cost.
Each row is also read per track, as the ICPR 2026 LRLPR benchmark scores it (`lpasrn.inference.fusion`): the frames of a
track fused by a vote over their texts or by pooling their per-position character probabilities, without the
annotated layout, with the track recognition rate, character accuracy and the confidence gap per fusion beside the
single-frame rate. `infer` turns LR plate images into SR images and plate texts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch.utils.data import DataLoader

from experiments import storage
from experiments.errors import UserError
from experiments.io import atomic_path, atomic_write_text
from lpasrn.data.charset import PLATE_LENGTH
from lpasrn.data.plates import PlateSRDataset, PlateTrack, generator_input, load_rgb, scan_tracks
from lpasrn.data.splits import build_splits, resolve_split_file
from lpasrn.inference.bundle import load_bundle
from lpasrn.inference.fusion import FUSIONS, SINGLE, char_probabilities, score_fusions
from lpasrn.inference.metrics import ImageMeter, RecognitionMeter, char_matches

LR_OCR = "lr_ocr"  # bicubic LR read by an OCR trained on LR
SOURCE_NAMES = {
    "sr": "SR (generator)",
    "bicubic": "bicubic LR",
    "hr": "HR (ceiling)",
    LR_OCR: "LR-trained OCR",
    "sr_independent": "SR, other OCR",
    "bicubic_independent": "bicubic, other OCR",
    "hr_independent": "HR, other OCR",
}
FUSION_NAMES = {SINGLE: "single frame", **{name: name for name in FUSIONS}}


@dataclass
class Case:
    """One plate frame as evaluated, kept for the best/worst grid."""

    lr: torch.Tensor
    sr: torch.Tensor
    bicubic: torch.Tensor
    hr: torch.Tensor
    text: str
    read_sr: str
    read_bicubic: str
    score: float


@dataclass
class EvaluationResult:
    split: str
    num_images: int
    num_tracks: int
    metrics: dict[str, dict[str, float]]  # source -> metric -> value
    fusion: dict[str, dict[str, dict[str, float | None]]] = field(default_factory=dict)  # source -> fusion -> metric
    cases: list[Case] = field(default_factory=list, repr=False)
    origin: str = ""  # where the tracks came from: the split file, or the whole folder

    def table(self) -> str:
        lines = [
            f"{self.split}: {self.num_images} images, {self.num_tracks} tracks scored ({self.origin})",
            f"{'input':<20} {'word_acc':>9} {'char_acc':>9} {'track_acc':>10} {'psnr':>7} {'ssim':>7}",
        ]
        for source, row in self.metrics.items():
            psnr = f"{row['psnr']:7.2f}" if "psnr" in row else f"{'-':>7}"
            ssim = f"{row['ssim']:7.4f}" if "ssim" in row else f"{'-':>7}"
            lines.append(
                f"{SOURCE_NAMES[source]:<20} {row['word_acc']:9.4f} {row['char_acc']:9.4f} "
                f"{row['track_acc']:10.4f} {psnr} {ssim}"
            )
        sr = self.metrics["sr"]["word_acc"]
        gain = sr - self.metrics["bicubic"]["word_acc"]
        lines.append(f"super-resolution gain in recognition rate: {gain * 100:+.2f} points over bicubic")
        if LR_OCR in self.metrics:
            lines.append(
                f"SR + OCR against the LR-trained OCR: {(sr - self.metrics[LR_OCR]['word_acc']) * 100:+.2f} points"
            )
        if "sr_independent" in self.metrics:
            gain = self.metrics["sr_independent"]["word_acc"] - self.metrics["bicubic_independent"]["word_acc"]
            lines.append(f"gain seen by the other OCR (never trained against): {gain * 100:+.2f} points over bicubic")
        if self.fusion:
            lines += [
                "",
                "per track, as the benchmark scores it (layout not given: the likelier of Brazilian and "
                "Mercosur; confidence = P(plate | it fits a layout), see lpasrn.inference.fusion):",
                f"{'input':<20} {'fusion':<13} {'track_acc':>9} {'char_acc':>9} {'conf_gap':>9} {'frame_acc':>9}",
            ]
            for source, fusions in self.fusion.items():
                for method, scores in fusions.items():
                    gap = f"{scores['confidence_gap']:9.4f}" if scores["confidence_gap"] is not None else f"{'-':>9}"
                    lines.append(
                        f"{SOURCE_NAMES[source]:<20} {FUSION_NAMES[method]:<13} {scores['track_acc']:9.4f} "
                        f"{scores['char_acc']:9.4f} {gap} {scores['frame_acc']:9.4f}"
                    )
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "split": self.split,
            "origin": self.origin,
            "num_images": self.num_images,
            "num_tracks": self.num_tracks,
            "metrics": self.metrics,
            "fusion": self.fusion,
        }


def _split_tracks(root: Path | str, split: str | None, split_file: Path | None) -> tuple[str, str, list[PlateTrack]]:
    """The split to score, where its tracks come from, and the tracks. A folder without a split file (given or
    `ROOT/split.txt`) is a test set as a whole: every track is scored, never a random tenth of it."""
    from lpasrn.data import packed

    if packed.is_packed(root):  # `lpasrn pack` output: the split is its shards' column
        packed.refuse_split_file(root, split_file)
        split = split or "test"
        tracks = packed.read_split_tracks(root, [split])[split]
        if not tracks:
            raise UserError(f"{root}: the packed {split} split is empty")
        return split, f"packed dataset {root}", tracks
    split_file = resolve_split_file(root, split_file)
    if split_file is None:
        if split not in (None, "test"):
            raise UserError(
                f"--split {split}: {root} has no split file, so all of it is a test set "
                "(pass --split-file to score a part of it)"
            )
        return "test", f"every track of {root}: no split file", scan_tracks(root).tracks
    split = split or "test"
    splits, _ = build_splits(root, split_file)
    if split not in splits:
        raise UserError(f"--split {split}: expected one of {sorted(splits)}")
    if not splits[split]:
        raise UserError(f"{split_file}: the {split} split is empty")
    return split, f"split file {split_file}", splits[split]


@torch.no_grad()
def evaluate(
    bundle: str | Path,
    data_root: str | Path,
    split: str | None = None,
    split_file: str | Path | None = None,
    constrain_layout: bool = False,
    device: str = "cpu",
    batch_size: int = 32,
    lr_ocr: str | Path | None = None,
    independent_ocr: str | Path | None = None,
) -> EvaluationResult:
    """Score the bundle on `split` of `data_root` (default test), or on every track when it has no split file.

    `lr_ocr` (a bundle or stage checkpoint whose OCR was trained on LR frames) adds the OCR-only baseline;
    `independent_ocr` (one trained on HR only, that the generator never trained against) reads SR, bicubic and HR
    again, so a gain that only the generator's own OCR sees, and no other reader, shows.
    """
    generator, ocr, cfg = load_bundle(bundle, device)
    readers = {"sr": ("sr", ocr), "bicubic": ("bicubic", ocr), "hr": ("hr", ocr)}  # row -> (image, reader)
    if lr_ocr is not None:
        readers[LR_OCR] = ("bicubic", load_bundle(lr_ocr, device, warn_untrained=False)[1])
    if independent_ocr is not None:
        other = load_bundle(independent_ocr, device, warn_untrained=False)[1]
        readers.update({f"{image}_independent": (image, other) for image in ("sr", "bicubic", "hr")})
    root = str(data_root) if storage.is_uri(data_root) else Path(data_root)
    split, origin, tracks = _split_tracks(root, split, Path(split_file) if split_file else None)
    dataset = PlateSRDataset(tracks, cfg.data.lr_size, cfg.data.scale, cfg.model.generator_frames)
    meters = {source: RecognitionMeter() for source in readers}
    frame_probs: dict[str, dict[str, list[torch.Tensor]]] = {source: {} for source in readers}  # track -> frames
    truths: dict[str, str] = {}
    image_meters = {"sr": ImageMeter(), "bicubic": ImageMeter()}
    cases: list[Case] = []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        lr, hr = batch["lr"].to(device), batch["hr"].to(device)
        layouts = batch["layout"]
        images = {
            "sr": generator(generator_input(batch).to(device), layouts).clamp(0, 1),
            "bicubic": F.interpolate(lr, size=hr.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1),
            "hr": hr,
        }
        reads = {
            source: reader.read(images[image], layouts if constrain_layout else None).texts
            for source, (image, reader) in readers.items()
        }
        for source, meter in meters.items():
            meter.update(reads[source], batch["text"], batch["track_id"])
        for source, (image, reader) in readers.items():
            probs = char_probabilities(reader(images[image], max_length=PLATE_LENGTH)).cpu()
            for track_id, frame in zip(batch["track_id"], probs):
                frame_probs[source].setdefault(track_id, []).append(frame)
        truths.update(zip(batch["track_id"], batch["text"]))
        for source, image_meter in image_meters.items():
            image_meter.update(images[source], hr)
        for i, text in enumerate(batch["text"]):
            score = char_matches(reads["sr"][i], text) / len(text)
            cases.append(
                Case(
                    lr[i].cpu(),
                    images["sr"][i].cpu(),
                    images["bicubic"][i].cpu(),
                    hr[i].cpu(),
                    text,
                    reads["sr"][i],
                    reads["bicubic"][i],
                    score,
                )
            )
    metrics = {}
    for source in readers:
        row = {
            "word_acc": meters[source].word_acc,
            "char_acc": meters[source].char_acc,
            "track_acc": meters[source].track_acc,
        }
        if source in image_meters:
            row.update(psnr=image_meters[source].psnr, ssim=image_meters[source].ssim)
        metrics[source] = row
    track_ids = list(truths)
    fusion = {
        source: score_fusions(
            [torch.stack(frame_probs[source][track]) for track in track_ids],
            [truths[track] for track in track_ids],
            (SINGLE, *FUSIONS),
        )
        for source in readers
    }
    return EvaluationResult(split, len(dataset), len(tracks), metrics, fusion, cases, origin=origin)


def write_report(result: EvaluationResult, path: str | Path) -> Path:
    return atomic_write_text(path, json.dumps(result.to_json(), indent=2))


# ----------------------------------------------------------------------------------------------------------
# Pictures
# ----------------------------------------------------------------------------------------------------------
def _to_pil(image: torch.Tensor, size: tuple[int, int]) -> Image.Image:
    array = (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(array).resize(size, Image.Resampling.NEAREST)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    import matplotlib

    try:
        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"), size)
    except OSError:
        return ImageFont.load_default()


def write_grid(result: EvaluationResult, path: str | Path, rows: int = 8, zoom: int = 3) -> Path:
    """Worst and best SR cases: LR | bicubic | SR | HR with the truth and both readings."""
    ranked = sorted(result.cases, key=lambda case: case.score)
    if not ranked:
        raise UserError("nothing to draw: the evaluated split has no images")
    count = max(1, min(rows, len(ranked) // 2))
    picked = [("worst", case) for case in ranked[:count]] + [("best", case) for case in ranked[::-1][:count]]
    height, width = picked[0][1].hr.shape[-2] * zoom, picked[0][1].hr.shape[-1] * zoom
    label_width, pad = 300, 4
    sheet = Image.new("RGB", (4 * (width + pad) + label_width, len(picked) * (height + pad) + 24), "white")
    draw, font = ImageDraw.Draw(sheet), _font(14)
    for col, title in enumerate(("LR", "bicubic", "SR", "HR")):
        draw.text((col * (width + pad) + 4, 4), title, fill="black", font=font)
    for row, (kind, case) in enumerate(picked):
        top = 24 + row * (height + pad)
        for col, image in enumerate((case.lr, case.bicubic, case.sr, case.hr)):
            sheet.paste(_to_pil(image, (width, height)), (col * (width + pad), top))
        colour = "darkred" if kind == "worst" else "darkgreen"
        draw.text((4 * (width + pad) + 6, top + 4), f"{kind}: truth {case.text}", fill=colour, font=font)
        draw.text(
            (4 * (width + pad) + 6, top + 22),
            f"SR {case.read_sr}  bicubic {case.read_bicubic}",
            fill="black",
            font=font,
        )
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return Path(path)


# ----------------------------------------------------------------------------------------------------------
# Inference
# ----------------------------------------------------------------------------------------------------------
@dataclass
class PlateReading:
    image: Path
    text: str
    confidence: float
    sr_path: Path | None


def sr_output_paths(images: Sequence[Path], out_dir: Path) -> list[Path]:
    """Where each input's SR image goes: `<stem>_sr.png` under `out_dir` at the input's path relative to the
    inputs' common folder, so the `lr-001.png` of two tracks never overwrite each other; inputs that would
    still share a name (`a.png` and `a.jpg`) keep their suffix in it."""
    resolved = [path.resolve() for path in images]
    common = Path(os.path.commonpath([path.parent for path in resolved]))
    planned = [out_dir / path.parent.relative_to(common) / f"{path.stem}_sr.png" for path in resolved]
    sources: dict[Path, set[Path]] = {}
    for source, target in zip(resolved, planned):
        sources.setdefault(target, set()).add(source)
    return [
        target.with_name(f"{source.stem}_{source.suffix.lstrip('.')}_sr.png") if len(sources[target]) > 1 else target
        for source, target in zip(resolved, planned)
    ]


@torch.no_grad()
def infer(
    bundle: str | Path,
    images: Sequence[str | Path],
    out_dir: str | Path | None = None,
    layout: str | None = None,
    device: str = "cpu",
) -> list[PlateReading]:
    """Read plates from LR images (any size: resized to the model's LR size); write SR images to `out_dir`
    (see `sr_output_paths`)."""
    generator, ocr, cfg = load_bundle(bundle, device)
    paths = [Path(image) for image in images]
    sr_paths = sr_output_paths(paths, Path(out_dir)) if out_dir is not None and paths else [None] * len(paths)
    readings = []
    for image_path, sr_path in zip(paths, sr_paths):
        lr = load_rgb(image_path, cfg.data.lr_size)[None].to(device)
        layouts = [layout] if layout else None
        sr = generator(lr, layouts).clamp(0, 1)
        result = ocr.read(sr, layout)
        confidence = float(np.prod(result.confidences[0])) if result.confidences[0] else 0.0
        if sr_path is not None:
            with atomic_path(sr_path) as tmp:
                _to_pil(sr[0].cpu(), (sr.shape[-1], sr.shape[-2])).save(tmp, format="PNG")
        readings.append(PlateReading(image_path, result.texts[0], confidence, sr_path))
    return readings
