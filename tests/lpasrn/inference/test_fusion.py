"""Track-level fusion: the layout-constrained reading, its confidence, and how the fusions treat a bad frame."""

from __future__ import annotations

import math

import pytest
import torch

from lpasrn.data.charset import CHARSET
from lpasrn.inference.fusion import (
    FUSIONS,
    char_probabilities,
    confidence_gap,
    fuse,
    fuse_tracks,
    read_plates,
    score_fusions,
)


def plate_probs(text: str, sure: float = 0.8) -> torch.Tensor:
    """[7, 36]: `sure` on each character of `text`, the rest spread evenly."""
    probs = torch.full((7, 36), (1 - sure) / 35, dtype=torch.float64)
    for position, char in enumerate(text):
        probs[position, CHARSET.index(char)] = sure
    return probs


def test_token_logits_become_per_position_character_probabilities_without_end_of_text():
    logits = torch.randn(3, 8, 37)
    logits[:, 2, 0] = 50.0  # end of text predicted early: dropped, the characters renormalised
    probs = char_probabilities(logits)
    assert probs.shape == (3, 7, 36)
    assert torch.allclose(probs.sum(-1), torch.ones(3, 7))
    assert torch.allclose(probs[:, 0], logits[:, 0, 1:].softmax(-1), atol=1e-6)


def test_the_reading_fits_a_layout_even_where_the_unconstrained_argmax_does_not():
    probs = plate_probs("ABC1234")
    probs[4] = 0.0
    probs[4, CHARSET.index("B")] = 0.6  # a letter where Brazilian wants a digit: Mercosur fits
    probs[4, CHARSET.index("8")] = 0.4
    readings = read_plates(probs[None])
    assert readings.texts == ["ABC1B34"] and readings.layouts == ["Mercosur"]
    probs[0] = 0.0
    probs[0, CHARSET.index("0")], probs[0, CHARSET.index("O")] = 0.9, 0.1  # a digit in a letter slot
    assert read_plates(probs[None]).texts[0][0] == "O"


def test_the_confidence_is_the_plate_probability_given_that_it_fits_a_layout():
    probs = plate_probs("ABC1234", sure=0.9)
    readings = read_plates(probs[None])
    other = 0.1 / 35
    letters, digits = 0.9 + 25 * other, 0.9 + 9 * other
    brazilian = letters**3 * digits**4
    mercosur = letters**3 * digits * (26 * other) * digits**2
    assert readings.texts == ["ABC1234"]
    assert readings.confidences[0] == pytest.approx(0.9**7 / (brazilian + mercosur), rel=1e-9)


def test_a_certain_plate_has_confidence_one_and_a_uniform_one_next_to_none():
    assert read_plates(plate_probs("BRA2E19", sure=1.0)[None]).confidences[0] == pytest.approx(1.0)
    assert read_plates(torch.full((1, 7, 36), 1 / 36)).confidences[0] < 1e-8


def corrupted_track(text: str, decoy: str) -> torch.Tensor:
    """Five frames: four each misread at a different position (a close second choice), and one corrupted frame
    that reads another plate with confidence."""
    frames = []
    for position in range(4):
        probs = plate_probs(text)
        wrong = CHARSET.index("8" if text[position].isdigit() else "Q")
        probs[position] = 0.1 / 34
        probs[position, CHARSET.index(text[position])], probs[position, wrong] = 0.4, 0.5
        frames.append(probs)
    frames.append(plate_probs(decoy, sure=0.95))
    return torch.stack(frames)


def test_pooling_probabilities_reads_a_track_that_a_vote_over_strings_misses():
    track = corrupted_track("ABC1234", decoy="XYZ9876")[None]
    assert fuse(track, method="vote").texts == ["XYZ9876"]  # five different strings: the surest frame wins
    for method in ("mean_prob", "mean_logprob"):
        assert fuse(track, method=method).texts == ["ABC1234"], method
    # Weighting frames by their own confidence trusts a corrupted frame that is sure of another plate.
    assert fuse(track, method="weighted_prob").texts == ["XYZ9876"]


def test_weighting_by_confidence_discounts_an_unreadable_frame():
    track = corrupted_track("ABC1234", decoy="XYZ9876")
    track[4] = torch.full((7, 36), 1 / 36, dtype=torch.float64)  # blank frame: no plate at all
    weighted, plain = fuse(track[None], method="weighted_prob"), fuse(track[None], method="mean_prob")
    assert weighted.texts == plain.texts == ["ABC1234"]
    assert weighted.confidences[0] > plain.confidences[0]


def test_probability_fusion_beats_or_equals_the_vote_when_one_frame_is_corrupted():
    generator = torch.Generator().manual_seed(0)

    def random_plate() -> str:
        letters = torch.randint(10, 36, (3,), generator=generator)
        digits = torch.randint(0, 10, (4,), generator=generator)
        return "".join(CHARSET[int(i)] for i in (*letters, *digits))

    tracks, truths = [], []
    for _ in range(40):
        text = random_plate()
        frames = []
        for _ in range(4):  # readable frames: each position is misread (a close second choice) 15% of the time
            probs = plate_probs(text)
            for position in range(7):
                wrong = int(torch.randint(0, 36, (1,), generator=generator))
                if torch.rand(1, generator=generator) < 0.15 and CHARSET[wrong] != text[position]:
                    probs[position] = 0.1 / 34
                    probs[position, CHARSET.index(text[position])], probs[position, wrong] = 0.35, 0.55
            frames.append(probs)
        frames.append(plate_probs(random_plate(), sure=0.9))  # the corrupted frame: sure of another plate
        tracks.append(torch.stack(frames))
        truths.append(text)
    scores = score_fusions(tracks, truths)
    assert scores["mean_prob"]["track_acc"] >= scores["vote"]["track_acc"] > scores["single"]["track_acc"]
    assert scores["mean_logprob"]["track_acc"] >= scores["vote"]["track_acc"]
    assert scores["weighted_prob"]["track_acc"] >= scores["vote"]["track_acc"]


def test_a_vote_tie_goes_to_the_surer_frames_and_counts_agreement_in_the_confidence():
    track = torch.stack(
        [
            plate_probs("ABC1234", 0.6),
            plate_probs("ABC1234", 0.6),
            plate_probs("XYZ9876", 0.99),
            plate_probs("XYZ9876", 0.99),
        ]
    )[None]
    readings = fuse(track, method="vote")
    single = read_plates(track[0]).confidences
    assert readings.texts == ["XYZ9876"]
    assert readings.confidences[0] == pytest.approx((single[2] + single[3]) / 4)


def test_tracks_with_fewer_frames_are_fused_over_their_own_frames_only():
    one_frame = plate_probs("ABC1234")[None]
    two_frames = torch.stack([plate_probs("BRA2E19"), plate_probs("BRA2E19")])
    for method in FUSIONS:
        readings = fuse_tracks([one_frame, two_frames], method)
        assert readings.texts == ["ABC1234", "BRA2E19"], method
        assert readings.confidences[0] == pytest.approx(read_plates(one_frame).confidences[0]), method


def test_the_confidence_gap_is_mean_confidence_on_right_minus_on_wrong():
    gap = confidence_gap([True, True, False], [0.9, 0.7, 0.2])
    assert gap["confidence_gap"] == pytest.approx(0.6)
    assert confidence_gap([True], [0.9])["confidence_gap"] is None


def test_scores_per_fusion_carry_the_single_frame_rate():
    tracks = [corrupted_track("ABC1234", "XYZ9876"), torch.stack([plate_probs("BRA2E19")] * 5)]
    scores = score_fusions(tracks, ["ABC1234", "BRA2E19"])
    assert list(scores) == ["single", *FUSIONS]
    assert scores["single"]["track_acc"] == pytest.approx(5 / 10)  # only the clean track's frames read right
    assert all(row["frame_acc"] == scores["single"]["track_acc"] for row in scores.values())
    assert scores["mean_prob"]["track_acc"] == 1.0 and scores["vote"]["track_acc"] == 0.5
    assert scores["vote"]["confidence_gap"] > 0 and not math.isnan(scores["vote"]["confidence_gap"])
    assert scores["mean_prob"]["confidence_gap"] is None  # no wrong track, no gap
