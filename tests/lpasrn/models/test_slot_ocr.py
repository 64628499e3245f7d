"""The slot CNN OCR: PARSeq's interface, seven slots, layout constraints, and that it actually learns."""

from __future__ import annotations

import pytest
import torch

from lpasrn.data.charset import CHARSET
from lpasrn.models import create_model, list_models, load_ocr_weights
from lpasrn.models.slot_ocr import PlateSlotOCR, slot_layout_mask
from lpasrn.training.system import plate_char_logits


def test_every_registered_ocr_reads_a_batch_into_seven_characters():
    images = torch.rand(2, 3, 32, 96)
    for name in ("slot_cnn", "slot_cnn_wide", "parseq_micro"):
        assert name in list_models("ocr")
        result = create_model(name).read(images, "Brazilian")
        assert [len(text) for text in result.texts] == [7, 7]


def test_logits_follow_the_token_layout_so_lcofl_sees_seven_plate_slots():
    ocr = create_model("slot_cnn").eval()
    logits = ocr(torch.rand(3, 3, 32, 96))
    assert logits.shape == (3, 8, ocr.tokenizer.num_classes)
    assert (logits[:, 7].argmax(-1) == ocr.tokenizer.eos_id).all()
    images = torch.rand(3, 3, 32, 96)
    assert torch.equal(plate_char_logits(ocr, ocr(images)), ocr.plate_logits(images))


def test_layout_constraint_puts_letters_and_digits_where_the_layout_wants_them():
    ocr = create_model("slot_cnn")
    result = ocr.read(torch.rand(2, 3, 32, 96), ["Brazilian", "Mercosur"])
    brazilian, mercosur = result.texts
    assert brazilian[:3].isalpha() and brazilian[3:].isdigit()
    assert mercosur[:3].isalpha() and mercosur[3].isdigit() and mercosur[4].isalpha() and mercosur[5:].isdigit()
    assert slot_layout_mask(["Mercosur"]).shape == (1, 7, len(CHARSET))


def test_training_loss_rejects_plates_of_another_length():
    with pytest.raises(ValueError, match="7-character"):
        create_model("slot_cnn").training_loss(torch.rand(1, 3, 32, 96), ["AB12"])


def test_it_memorises_a_few_plates_quickly():
    """The property PARSeq from scratch lacked on a CPU budget: the loss leaves the layout prior at once."""
    torch.manual_seed(0)
    ocr = PlateSlotOCR(channels=(8, 16, 16, 16), dropout=0.0, label_smoothing=0.0)
    images = torch.rand(8, 3, 32, 96)
    texts = ["ABC1234", "XYZ9876", "BRA2E19", "QWE1R23", "JKL0001", "MNO5P67", "PQR4444", "STU1A22"]
    optimizer = torch.optim.Adam(ocr.parameters(), 3e-3)
    for _ in range(60):
        loss = ocr.training_loss(images, texts)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert ocr.read(images).texts == texts


def test_a_state_dict_saved_from_the_same_kind_loads(tmp_path):
    source = create_model("slot_cnn")
    path = tmp_path / "slot.pt"
    torch.save(source.state_dict(), path)
    loaded = create_model("slot_cnn")
    load_ocr_weights(loaded, "slot_cnn", str(path))
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), loaded.state_dict().values()))
