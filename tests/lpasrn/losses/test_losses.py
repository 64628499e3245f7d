"""LCOFL, SSIM/PSNR and the confusion tracker."""

from __future__ import annotations

import pytest
import torch

from lpasrn.data.charset import CHAR_TO_INDEX, encode
from lpasrn.losses import CharacterConfusionTracker, layout_penalty, lcofl_loss, psnr, ssim


def test_ssim_is_one_for_equal_images_and_lower_for_noise():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 96)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-5)
    noisy = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    assert ssim(x, noisy).item() < 0.9
    assert ssim(x, noisy, reduction="none").shape == (2,)


def test_ssim_handles_images_smaller_than_the_window():
    x = torch.rand(1, 3, 8, 24)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-5)


def test_psnr_of_a_known_error():
    x = torch.zeros(1, 3, 4, 4)
    assert psnr(x, x + 0.1).item() == pytest.approx(20.0, abs=1e-3)


def _logits_for(texts: list[str], confidence: float = 4.0) -> torch.Tensor:
    logits = torch.zeros(len(texts), 7, 36)
    for b, text in enumerate(texts):
        for t, char in enumerate(text):
            logits[b, t, CHAR_TO_INDEX[char]] = confidence
    return logits


def test_layout_penalty_punishes_the_wrong_character_kind():
    right = layout_penalty(_logits_for(["ABC1234"]), ["Brazilian"])
    wrong = layout_penalty(_logits_for(["ABC1234"]), ["Mercosur"])  # a digit where Mercosur wants a letter
    swapped = layout_penalty(_logits_for(["1234ABC"]), ["Brazilian"])
    assert right < wrong < swapped


def test_all_three_terms_reach_the_generator():
    """Gradients of the classification and layout terms flow through the OCR logits into the SR image."""
    torch.manual_seed(0)
    generator = torch.nn.Conv2d(3, 3, 3, padding=1)
    ocr_head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d((1, 7)), torch.nn.Flatten(2))
    projection = torch.nn.Linear(3, 36)
    lr_up, hr = torch.rand(2, 3, 32, 96), torch.rand(2, 3, 32, 96)
    targets = torch.tensor([encode("ABC1234"), encode("XYZ1A23")])
    for term in ("classification", "layout", "ssim"):
        generator.zero_grad()
        sr = generator(lr_up)
        char_logits = projection(ocr_head(sr).transpose(1, 2))  # [B, 7, 36], a function of sr
        terms = lcofl_loss(char_logits, targets, ["Brazilian", "Mercosur"], sr, hr)
        value = terms.ssim if term == "ssim" else getattr(terms, term)
        value.backward()
        assert generator.weight.grad is not None and generator.weight.grad.abs().sum() > 0, term


def test_confusion_weights_grow_for_confused_characters():
    tracker = CharacterConfusionTracker(alpha=2.0, threshold=0.05, max_weight=2.5)
    target = torch.tensor(encode("0O0O0O8B"))
    predicted = torch.tensor(encode("0000008B"))  # every O read as 0
    tracker.update(predicted, target)
    weights = tracker.rebuild_weights()
    assert weights[CHAR_TO_INDEX["O"]] == pytest.approx(2.5)  # 1 + 2 * 1.0 clamped
    assert weights[CHAR_TO_INDEX["0"]] == 1.0 and weights[CHAR_TO_INDEX["8"]] == 1.0
    assert tracker.most_confused(1) == [("O", "0", 3)]


def test_confusion_weights_scale_the_cross_entropy():
    tracker = CharacterConfusionTracker()
    tracker.update(torch.tensor(encode("A")), torch.tensor(encode("B")))
    weights = tracker.rebuild_weights()
    logits = torch.zeros(1, 7, 36)
    targets = torch.tensor([encode("BAC1234")])
    plain = lcofl_loss(logits, targets, ["Brazilian"], torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    weighted = lcofl_loss(
        logits, targets, ["Brazilian"], torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), char_weights=weights
    )
    assert torch.allclose(plain.classification, weighted.classification)  # uniform logits: same CE everywhere
    logits[0, 0, CHAR_TO_INDEX["B"]] = 5.0  # the heavy character is now easy -> weighted loss is lower
    easy_b = lcofl_loss(logits, targets, ["Brazilian"], torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), weights)
    easy_plain = lcofl_loss(logits, targets, ["Brazilian"], torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    assert easy_b.classification < easy_plain.classification


def test_confusion_state_round_trips():
    tracker = CharacterConfusionTracker()
    tracker.update(torch.tensor([1, 2]), torch.tensor([1, 3]))
    tracker.rebuild_weights()
    other = CharacterConfusionTracker()
    other.load_state_dict(tracker.state_dict())
    assert torch.equal(other.matrix, tracker.matrix) and torch.equal(other.weights, tracker.weights)
