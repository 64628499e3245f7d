"""`lpasrn predict`: read a test set the way the ICPR 2026 LRLPR benchmark scores it.

Five LR frames per track in, one plate and a confidence per track out, written as the submission file
(`submission`). Tracks are read in batches: every frame of a batch of tracks goes through the generator and
the OCR at once, their per-position character probabilities are fused per track (`fusion`). The same loop
runs PyTorch (an inference bundle) or ONNX Runtime (a folder from `lpasrn export --format onnx`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from experiments.errors import UserError
from lpasrn.data.charset import PLATE_LENGTH
from lpasrn.data.plates import LRTrack, frame_stacks, load_rgb, scan_lr_tracks
from lpasrn.inference.fusion import DEFAULT_FUSION, FUSIONS, char_probabilities, fuse_tracks
from lpasrn.inference.submission import TrackPrediction
from lpasrn.models.parseq import PARSeq

DECODINGS = ("ar", "nar")


class PlateReader(Protocol):
    """What `predict` needs of a backend: the LR size it reads, how many frames its generator reads together, and
    LR frames -> OCR token logits."""

    lr_size: tuple[int, int]
    generator_frames: int

    def token_logits(self, lr: Tensor) -> Tensor:
        """[N, 3, h, w] (multi-frame: [N, K, 3, h, w]) in [0, 1] -> [N, >= 8, 37] float logits on the CPU."""


@contextlib.contextmanager
def _decoding(ocr: nn.Module, decode: str | None) -> Iterator[None]:
    """PARSeq decodes autoregressively (`ar`) or all at once (`nar`, as exported) for the duration."""
    if decode is None or not isinstance(ocr, PARSeq):
        yield
        return
    previous = ocr.decode_ar
    ocr.decode_ar = decode == "ar"
    try:
        yield
    finally:
        ocr.decode_ar = previous


class TorchPlateReader:
    """Generator then OCR in PyTorch. `decode` (PARSeq only): `ar`, `nar`, or None for the model's own setting;
    refinement rounds follow either, and the plate length is fixed at seven."""

    def __init__(
        self,
        generator: nn.Module,
        ocr: nn.Module,
        lr_size: tuple[int, int],
        device: str = "cpu",
        decode: str | None = None,
        generator_frames: int = 1,
    ):
        if decode is not None and decode not in DECODINGS:
            raise ValueError(f"decode must be one of {DECODINGS}, got {decode!r}")
        self.generator, self.ocr = generator.eval(), ocr.eval()
        self.lr_size: tuple[int, int] = (lr_size[0], lr_size[1])
        self.device, self.decode = device, decode
        self.generator_frames = generator_frames

    @torch.inference_mode()
    def token_logits(self, lr: Tensor) -> Tensor:
        sr = self.generator(lr.to(self.device)).clamp(0.0, 1.0)
        with _decoding(self.ocr, self.decode):
            return self.ocr(sr, max_length=PLATE_LENGTH).float().cpu()


def load_reader(
    checkpoint: str | Path | None = None,
    onnx_dir: str | Path | None = None,
    device: str = "cpu",
    decode: str | None = None,
    threads: int = 0,
) -> PlateReader:
    """A PyTorch reader for a bundle (or stage checkpoint), or an ONNX Runtime reader for an export folder."""
    if (checkpoint is None) == (onnx_dir is None):
        raise UserError("give either --checkpoint BUNDLE or --onnx DIR")
    if onnx_dir is not None:
        from lpasrn.inference.onnx_reader import OnnxPlateReader

        if decode == "ar":
            raise UserError("--decode ar: the ONNX OCR decodes non-autoregressively (use --decode nar or leave it out)")
        return OnnxPlateReader(onnx_dir, device, threads)
    from lpasrn.inference.bundle import load_bundle

    assert checkpoint is not None  # exactly one of the two was given
    generator, ocr, cfg = load_bundle(checkpoint, device)
    return TorchPlateReader(generator, ocr, cfg.data.lr_size, device, decode, cfg.model.generator_frames)


class LRTrackFrames(Dataset):
    """Item i: the LR frames of track i as [F, 3, h, w], bicubic-resized to the reader's LR size."""

    def __init__(self, tracks: Sequence[LRTrack], lr_size: tuple[int, int]):
        self.tracks = list(tracks)
        self.lr_size: tuple[int, int] = (lr_size[0], lr_size[1])

    def __len__(self) -> int:
        return len(self.tracks)

    def __getitem__(self, index: int) -> tuple[int, Tensor]:
        return index, torch.stack([load_rgb(path, self.lr_size) for path in self.tracks[index].lr_paths])


def _as_list(batch: list[tuple[int, Tensor]]) -> list[tuple[int, Tensor]]:
    return batch


def _progress(batches: DataLoader, total_tracks: int, show: bool | None):
    """A bar on a terminal; elsewhere (files, pipes) a progress line every 30 s; nothing with show=False."""
    if show is False:
        return batches
    if show or sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(batches, desc=f"reading {total_tracks} tracks", unit="batch", dynamic_ncols=True, file=sys.stderr)
    from lpasrn.progress import ProgressLines

    return ProgressLines(batches, f"reading {total_tracks} tracks", every_s=30.0)


def read_tracks(
    reader: PlateReader, tracks: Sequence[LRTrack], batch_tracks: int = 16, progress: bool | None = None
) -> list[Tensor]:
    """Per-frame character probabilities [F_i, 7, 36] of every track, read `batch_tracks` tracks at a time."""
    if batch_tracks < 1:
        raise UserError(f"--batch-tracks {batch_tracks}: expected at least 1")
    loader = DataLoader(
        LRTrackFrames(tracks, reader.lr_size), batch_size=batch_tracks, shuffle=False, collate_fn=_as_list
    )
    probs: list[Tensor] = [torch.empty(0)] * len(tracks)
    for batch in _progress(loader, len(tracks), progress):
        frames = torch.cat(
            [lr if reader.generator_frames == 1 else frame_stacks(lr, reader.generator_frames) for _, lr in batch]
        )  # multi-frame: every frame once as the reference
        per_frame = char_probabilities(reader.token_logits(frames))
        for (index, _), track_probs in zip(batch, per_frame.split([len(lr) for _, lr in batch])):
            probs[index] = track_probs
    return probs


def predict(
    reader: PlateReader,
    root: str | Path,
    fusion: str = DEFAULT_FUSION,
    batch_tracks: int = 16,
    progress: bool | None = None,
) -> list[TrackPrediction]:
    """One prediction per track folder below `root` (LR frames only; HR frames and annotations are ignored)."""
    if fusion not in FUSIONS:
        raise UserError(f"--fusion {fusion}: expected one of {', '.join(FUSIONS)}")
    tracks = scan_lr_tracks(root)
    readings = fuse_tracks(read_tracks(reader, tracks, batch_tracks, progress), fusion)
    return [
        TrackPrediction(track.track_id, text, confidence)
        for track, text, confidence in zip(tracks, readings.texts, readings.confidences)
    ]
