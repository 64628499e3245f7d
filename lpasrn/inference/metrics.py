"""Recognition and image metrics: word accuracy (recognition rate), character accuracy, PSNR, SSIM,
and the track-level majority vote over a track's frames."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from lpasrn.losses.ssim import psnr, ssim


def char_matches(predicted: str, target: str) -> int:
    """Characters right in place (a shorter or longer prediction loses the missing/extra positions)."""
    return sum(p == t for p, t in zip(predicted, target))


@dataclass
class RecognitionMeter:
    """Accumulates exact-match and per-character accuracy, and per-track votes, over an epoch."""

    words: int = 0
    words_right: int = 0
    chars: int = 0
    chars_right: int = 0
    votes: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    truth: dict[str, str] = field(default_factory=dict)

    def update(self, predicted: Sequence[str], targets: Sequence[str], track_ids: Sequence[str] | None = None) -> None:
        for index, (pred, target) in enumerate(zip(predicted, targets)):
            self.words += 1
            self.words_right += pred == target
            self.chars += len(target)
            self.chars_right += char_matches(pred, target)
            if track_ids is not None:
                self.votes[track_ids[index]][pred] += 1
                self.truth[track_ids[index]] = target

    @property
    def word_acc(self) -> float:
        return self.words_right / max(1, self.words)

    @property
    def char_acc(self) -> float:
        return self.chars_right / max(1, self.chars)

    @property
    def tracks_right(self) -> int:
        """Tracks whose majority vote over their frames is right (ties go to the reading seen first)."""
        return sum(votes.most_common(1)[0][0] == self.truth[track] for track, votes in self.votes.items())

    @property
    def track_acc(self) -> float:
        return self.tracks_right / len(self.votes) if self.votes else 0.0

    def state(self) -> list[int]:
        return [self.words, self.words_right, self.chars, self.chars_right]

    def merge_counts(self, counts: Sequence[float]) -> None:
        """Replace the counters by totals summed over DDP ranks."""
        self.words, self.words_right, self.chars, self.chars_right = (int(c) for c in counts)


@dataclass
class ImageMeter:
    """Mean PSNR and SSIM over images."""

    count: int = 0
    psnr_sum: float = 0.0
    ssim_sum: float = 0.0

    def update(self, sr: torch.Tensor, hr: torch.Tensor) -> None:
        sr = sr.detach().float().clamp(0, 1)
        hr = hr.detach().float()
        self.count += sr.shape[0]
        self.psnr_sum += float(psnr(sr, hr, reduction="none").sum())
        self.ssim_sum += float(ssim(sr, hr, reduction="none").sum())

    @property
    def psnr(self) -> float:
        return self.psnr_sum / max(1, self.count)

    @property
    def ssim(self) -> float:
        return self.ssim_sum / max(1, self.count)
