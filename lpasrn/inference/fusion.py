"""One plate per track from its frames: the readings of five LR frames fused into one text and one confidence.

The ICPR 2026 LRLPR benchmark scores a track as right only when the whole plate is, and breaks ties by the
confidence gap (mean confidence on right tracks minus mean on wrong ones), so a fusion must give a text and a
confidence that ranks right readings above wrong ones. Every OCR here gives per-position character probabilities
(`char_probabilities`); the fusions differ in where the frames meet:

- `vote`: each frame is read alone (`read_plates`), the most frequent text wins (ties: the larger summed frame
  confidence); confidence = the summed confidences of the frames that read the winner / the number of frames,
  so agreement and certainty both count.
- `mean_prob`: the frames' per-position distributions are averaged (a linear pool), then read once. A corrupted
  frame moves each position's distribution by at most 1/F, however sure it is.
- `weighted_prob`: a linear pool in which each frame weighs as much as its own single-frame confidence, so frames
  the OCR cannot read (blurred, occluded, corrupted) count for little.
- `mean_logprob`: the per-position log-probabilities are averaged and renormalised (a log-linear pool, the
  normalised geometric mean): agreement sharpens, but one frame sure of a wrong character can veto the right one.

Reading a distribution (`read_plates`) applies the layout constraint without knowing the layout, as at test time:
the plate must be Brazilian `LLLNNNN` or Mercosur `LLLNLNN`; each layout's best plate is its per-position argmax
over the characters that layout allows there, and the layout whose best plate is more probable wins. Confidence
= the probability of that plate under the (fused) per-position distribution, given that the plate fits one of
the two layouts:

    confidence = prod_k p_k(s_k) / sum_L prod_k sum_{c allowed by L at k} p_k(c)

The two layouts' sets of plates are disjoint (position 5 is a digit in one and a letter in the other), so the
denominator is exactly the probability of "a valid plate". It is the product of the per-position maxima of the
layout-constrained distribution, renormalised: 1.0 only when every position is certain, and a single doubtful
character lowers it in proportion. Pure PyTorch; no Ray.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lpasrn.data.charset import CHARSET, DIGITS, LAYOUT_PATTERNS, LETTERS, PLATE_LENGTH

FUSIONS = ("vote", "mean_prob", "weighted_prob", "mean_logprob")
DEFAULT_FUSION = "weighted_prob"  # best track rate in every row measured (README, "Reading a track")
_LOG_FLOOR = 1e-12  # keeps log(0) finite in the log-linear pool


@dataclass
class PlateReadings:
    """Texts, their confidences in [0, 1] and the layout each was read as, one per frame or track."""

    texts: list[str]
    confidences: list[float]
    layouts: list[str]

    def __len__(self) -> int:
        return len(self.texts)


def char_probabilities(token_logits: Tensor) -> Tensor:
    """[N, T >= 8, EOS + 36] OCR token logits -> [N, 7, 36] per-position probabilities over the plate charset.

    Both OCR kinds give logits in PARSeq's token layout (class 0 = end of text, then 0-9A-Z). A plate has seven
    characters, so the end-of-text class is dropped and each position renormalised over the characters.
    """
    if token_logits.shape[1] < PLATE_LENGTH or token_logits.shape[-1] != len(CHARSET) + 1:
        raise ValueError(
            f"expected token logits [N, >={PLATE_LENGTH}, {len(CHARSET) + 1}], got {list(token_logits.shape)}"
        )
    chars = token_logits[:, :PLATE_LENGTH].float().softmax(-1)[..., 1:]
    return chars / chars.sum(-1, keepdim=True).clamp_min(1e-30)


def _allowed(device: torch.device) -> Tensor:
    """[layouts, 7, 36] True where the layout allows the character at the position."""
    kinds = {
        "L": torch.tensor([char in LETTERS for char in CHARSET]),
        "N": torch.tensor([char in DIGITS for char in CHARSET]),
    }
    return torch.stack([torch.stack([kinds[slot] for slot in pattern]) for pattern in LAYOUT_PATTERNS.values()]).to(
        device
    )


def read_plates(probs: Tensor) -> PlateReadings:
    """The most probable valid plate of each [N, 7, 36] distribution, with its confidence (module docstring)."""
    if probs.ndim != 3 or probs.shape[1:] != (PLATE_LENGTH, len(CHARSET)):
        raise ValueError(f"expected probabilities [N, {PLATE_LENGTH}, {len(CHARSET)}], got {list(probs.shape)}")
    probs = probs.double()
    allowed = _allowed(probs.device)  # [L, 7, 36]
    masked = probs[:, None] * allowed[None]  # [N, L, 7, 36]
    best_probs, best_ids = masked.max(-1)  # [N, L, 7]
    log_best = best_probs.clamp_min(1e-300).log().sum(-1)  # [N, L]: log P(best plate of the layout)
    log_valid = masked.sum(-1).clamp_min(1e-300).log().sum(-1)  # [N, L]: log P(some plate of the layout)
    layout = log_best.argmax(-1)  # [N]
    rows = torch.arange(len(probs), device=probs.device)
    confidence = (log_best[rows, layout] - torch.logsumexp(log_valid, -1)).exp().clamp(0.0, 1.0)
    ids = best_ids[rows, layout].tolist()
    names = list(LAYOUT_PATTERNS)
    return PlateReadings(
        texts=["".join(CHARSET[i] for i in row) for row in ids],
        confidences=confidence.tolist(),
        layouts=[names[i] for i in layout.tolist()],
    )


def _frame_mask(probs: Tensor, frame_mask: Tensor | None) -> Tensor:
    mask = torch.ones(probs.shape[:2], dtype=torch.bool, device=probs.device) if frame_mask is None else frame_mask
    if mask.shape != probs.shape[:2]:
        raise ValueError(f"frame_mask {list(mask.shape)} does not match probabilities {list(probs.shape[:2])}")
    if not bool(mask.any(-1).all()):
        raise ValueError("every track needs at least one frame")
    return mask.to(probs.device)


def pool(probs: Tensor, frame_mask: Tensor | None = None, method: str = DEFAULT_FUSION) -> Tensor:
    """[T, F, 7, 36] frame distributions (frames past a track's end masked out) -> [T, 7, 36] fused ones."""
    mask = _frame_mask(probs, frame_mask)
    probs = probs.double()
    weights = mask.double()
    if method == "weighted_prob":
        alone = torch.zeros_like(weights)
        alone[mask] = torch.tensor(read_plates(probs[mask]).confidences, dtype=torch.float64, device=probs.device)
        # A track none of whose frames is readable at all keeps equal weights.
        weights = torch.where(alone.sum(-1, keepdim=True) > 1e-12, alone, weights)
    weights = (weights / weights.sum(-1, keepdim=True))[..., None, None]  # [T, F, 1, 1]
    if method in ("mean_prob", "weighted_prob"):
        return (probs * weights).sum(1)
    if method == "mean_logprob":
        return ((probs.clamp_min(_LOG_FLOOR).log() * weights).sum(1)).softmax(-1)
    raise ValueError(f"no pooling for fusion {method!r} (pooled fusions: mean_prob, weighted_prob, mean_logprob)")


def vote(frames: PlateReadings, track_of_frame: Sequence[int], frames_per_track: Sequence[int]) -> PlateReadings:
    """Majority vote over the frames' texts per track; ties go to the larger summed confidence, then the text
    read first."""
    tallies: list[dict[str, list]] = [defaultdict(lambda: [0, 0.0, 0, ""]) for _ in frames_per_track]
    for order, (track, text, confidence, layout) in enumerate(
        zip(track_of_frame, frames.texts, frames.confidences, frames.layouts)
    ):
        entry = tallies[track][text]
        if entry[0] == 0:
            entry[2], entry[3] = -order, layout
        entry[0] += 1
        entry[1] += confidence
    texts, confidences, layouts = [], [], []
    for tally, count in zip(tallies, frames_per_track):
        text, (votes, summed, _, layout) = max(tally.items(), key=lambda item: (item[1][0], item[1][1], item[1][2]))
        texts.append(text)
        confidences.append(summed / count)
        layouts.append(layout)
    return PlateReadings(texts, confidences, layouts)


def fuse(probs: Tensor, frame_mask: Tensor | None = None, method: str = DEFAULT_FUSION) -> PlateReadings:
    """One reading per track from [T, F, 7, 36] per-frame distributions (`frame_mask` [T, F] marks real frames
    when tracks have fewer than F)."""
    if method not in FUSIONS:
        raise ValueError(f"unknown fusion {method!r} (expected one of {', '.join(FUSIONS)})")
    if probs.ndim != 4:
        raise ValueError(
            f"expected probabilities [tracks, frames, {PLATE_LENGTH}, {len(CHARSET)}], got {list(probs.shape)}"
        )
    if method != "vote":
        return read_plates(pool(probs, frame_mask, method))
    mask = _frame_mask(probs, frame_mask)
    tracks, frames = mask.nonzero(as_tuple=True)
    readings = read_plates(probs[tracks, frames])
    return vote(readings, tracks.tolist(), mask.sum(-1).tolist())


def fuse_tracks(track_probs: Sequence[Tensor], method: str = DEFAULT_FUSION) -> PlateReadings:
    """`fuse` for a list of [F_i, 7, 36] tensors, one per track (any number of frames each)."""
    if not track_probs:
        return PlateReadings([], [], [])
    most = max(len(probs) for probs in track_probs)
    stacked = track_probs[0].new_zeros(len(track_probs), most, PLATE_LENGTH, len(CHARSET))
    mask = torch.zeros(len(track_probs), most, dtype=torch.bool)
    for index, probs in enumerate(track_probs):
        stacked[index, : len(probs)] = probs
        mask[index, : len(probs)] = True
    return fuse(stacked, mask, method)


# ----------------------------------------------------------------------------------------------------------
# Scoring, as the benchmark does
# ----------------------------------------------------------------------------------------------------------
SINGLE = "single"  # every frame read alone and scored as its own track: the single-frame rate


def confidence_gap(right: Sequence[bool], confidences: Sequence[float]) -> dict[str, float | None]:
    """Mean confidence on right and on wrong readings, and their difference (the benchmark's tie-breaker);
    None where a side is empty."""
    on_right = [c for ok, c in zip(right, confidences) if ok]
    on_wrong = [c for ok, c in zip(right, confidences) if not ok]
    mean_right = sum(on_right) / len(on_right) if on_right else None
    mean_wrong = sum(on_wrong) / len(on_wrong) if on_wrong else None
    gap = mean_right - mean_wrong if mean_right is not None and mean_wrong is not None else None
    return {"confidence_gap": gap, "mean_confidence_right": mean_right, "mean_confidence_wrong": mean_wrong}


def _scores(readings: PlateReadings, truths: Sequence[str]) -> dict[str, float | None]:
    from lpasrn.inference.metrics import char_matches

    right = [text == truth for text, truth in zip(readings.texts, truths)]
    chars = sum(char_matches(text, truth) for text, truth in zip(readings.texts, truths))
    return {
        "track_acc": sum(right) / max(1, len(right)),
        "char_acc": chars / max(1, sum(len(truth) for truth in truths)),
        **confidence_gap(right, readings.confidences),
    }


def score_fusions(
    track_probs: Sequence[Tensor], truths: Sequence[str], methods: Sequence[str] = (SINGLE, *FUSIONS)
) -> dict[str, dict[str, float | None]]:
    """Per method: `track_acc` (whole plate right; for `single`, per frame), `char_acc`, the confidence gap and
    the mean confidences on right and wrong readings, and `frame_acc` (the single-frame rate) for reference."""
    frame_readings = read_plates(torch.cat(list(track_probs)))
    frame_truths = [truth for probs, truth in zip(track_probs, truths) for _ in range(len(probs))]
    single = _scores(frame_readings, frame_truths)
    results = {}
    for method in methods:
        scores = single if method == SINGLE else _scores(fuse_tracks(track_probs, method), truths)
        results[method] = {**scores, "frame_acc": single["track_acc"]}
    return results
