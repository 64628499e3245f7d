"""The images lpasrn writes to TensorBoard: the LR|SR|HR strip and the character confusion matrix."""

from __future__ import annotations

import torch

from lpasrn.data.charset import CHARSET
from lpasrn.training.events import PlateStrip, confusion_figure, confusion_image, first_frame_per_track, strip_image

HR_H, HR_W = 32, 96
TRACK_COLOURS = {"track_a": (0.25, 0.5, 0.75), "track_b": (0.75, 0.25, 0.5)}


def validation_batch(frames: int = 5):
    """Two tracks of `frames` frames in a row, as the validation loader gives them; each plate one flat colour."""
    track_ids = [track for track in TRACK_COLOURS for _ in range(frames)]
    hr = torch.stack([torch.tensor(TRACK_COLOURS[t]).view(3, 1, 1).expand(3, HR_H, HR_W) for t in track_ids])
    lr = hr[:, :, ::2, ::2].clone()
    texts = ["ABC1234" if t == "track_a" else "XYZ9876" for t in track_ids]
    return lr, hr.clone(), hr, track_ids, texts


def plate_rows(image: torch.Tensor, colour: tuple[float, ...]) -> torch.Tensor:
    """Image rows holding pixels of `colour` (to 1/255, the strip is 8-bit)."""
    match = ((image - torch.tensor(colour).view(3, 1, 1)).abs() < 1.5 / 255).all(0)
    return match.any(1).nonzero().flatten()


def test_strip_shows_one_frame_of_each_distinct_track_not_four_frames_of_one():
    lr, sr, hr, track_ids, texts = validation_batch()
    strip = PlateStrip(rows=4)
    strip.add(lr, sr, hr, track_ids, texts, reads=texts)
    image = strip.image()
    assert image.dim() == 3 and image.shape[0] == 3 and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1
    for colour in TRACK_COLOURS.values():
        assert len(plate_rows(image, colour)) >= 3 * HR_H  # every plate shown, magnified


def test_strip_gathers_distinct_tracks_over_batches_until_full():
    lr, sr, hr, track_ids, texts = validation_batch()
    strip = PlateStrip(rows=3)
    strip.add(lr[:5], sr[:5], hr[:5], track_ids[:5], texts[:5])  # a batch holding one track
    assert not strip.full
    strip.add(lr[3:], sr[3:], hr[3:], track_ids[3:], texts[3:])  # the same track again, then a new one
    assert not strip.full and all(len(plate_rows(strip.image(), c)) > 0 for c in TRACK_COLOURS.values())
    assert first_frame_per_track(["a", "a", "b", "b", "c"], limit=2) == [0, 2]


def test_strip_cells_are_magnified_integer_times_under_a_header_and_captions():
    lr, sr, hr, track_ids, texts = validation_batch(frames=1)
    image = strip_image(lr, sr, hr, texts, reads=["ABC1234", "XYZ9B76"], scale=3)
    first = plate_rows(image, TRACK_COLOURS["track_a"])
    assert len(first) == 3 * HR_H  # one row of 3x cells: LR (bicubic of a flat plate is flat), SR and HR
    columns = ((image - torch.tensor(TRACK_COLOURS["track_a"]).view(3, 1, 1)).abs() < 1.5 / 255).all(0).any(0)
    assert int(columns.sum()) == 3 * 3 * HR_W  # three cells side by side, each 3 x 96 wide
    header = image[:, : int(first[0])]
    assert first[0] >= 30 and (header < 0.3).all(0).sum() > 50  # a band of text above the plates
    unlabelled = strip_image(lr, sr, hr, scale=3)
    assert image.shape[1] > unlabelled.shape[1]  # each row's plate text and OCR reading take their own line


def test_confusion_image_has_a_colour_scale_and_named_axes():
    matrix = torch.eye(len(CHARSET), dtype=torch.float64) * 20
    matrix[CHARSET.index("O"), CHARSET.index("0")] = 5
    fig = confusion_figure(matrix, CHARSET)
    heat, colour_bar = fig.axes
    assert heat.get_xlabel() == "predicted character" and heat.get_ylabel() == "true character"
    assert [t.get_text() for t in heat.get_xticklabels()] == list(CHARSET)
    assert [t.get_text() for t in heat.get_yticklabels()] == list(CHARSET)
    assert colour_bar.get_ylabel()  # the scale says what the colours measure
    image = confusion_image(matrix, CHARSET)
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype.name == "uint8"
