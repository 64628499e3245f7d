"""digits synth: reproducible meter-wheel digits whose labels, classes and layout the data loader accepts."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from digits.data.labels import class_index
from digits.data.sources import ImageShape, load_source
from digits.data.synth import LABELS_NAME, SynthSpec, _wheel_mask, render_dataset, write_dataset
from experiments.errors import UserError


def labels_of(folder: Path) -> list[str]:
    return [line.split("\t")[1] for line in (folder / LABELS_NAME).read_text(encoding="utf-8").splitlines()]


def test_same_seed_writes_the_same_bytes(tmp_path):
    spec = SynthSpec(count=24, nb_classes=100, seed=3)
    first, second = write_dataset(tmp_path / "a", spec), write_dataset(tmp_path / "b", spec)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir()) and len(names) == 25
    assert all((first / name).read_bytes() == (second / name).read_bytes() for name in names)


def test_another_seed_renders_other_images():
    a = render_dataset(SynthSpec(count=10, seed=1))
    b = render_dataset(SynthSpec(count=10, seed=2))
    assert [label for label, _ in a] == [label for label, _ in b]
    assert not any(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b))


def test_ten_class_labels_are_single_digits_balanced(tmp_path):
    labels = labels_of(write_dataset(tmp_path / "s", SynthSpec(count=50)))
    assert all(re.fullmatch(r"\d", label) for label in labels)
    assert sorted(labels) == sorted([str(d) for d in range(10)] * 5)


def test_hundred_class_readings_cover_every_tenth(tmp_path):
    labels = labels_of(write_dataset(tmp_path / "s", SynthSpec(count=200, nb_classes=100)))
    assert all(re.fullmatch(r"\d\.\d", label) for label in labels)
    assert sorted({class_index(label, 100) for label in labels}) == list(range(100))


def test_the_next_digit_scrolls_in_from_below():
    spec = SynthSpec(count=1, nb_classes=100)
    whole = _wheel_mask(5, 0.0, spec, np.random.default_rng(7))
    rolled = _wheel_mask(5, 0.5, spec, np.random.default_rng(7))
    bottom, middle = slice(spec.height * 7 // 8, spec.height), slice(spec.height * 3 // 8, spec.height * 5 // 8)
    assert whole[bottom].mean() < 0.05 < 0.2 < rolled[bottom].mean()  # the 6 arrives from below
    assert whole[middle].sum() > 3 * rolled[middle].sum()  # half-way, the gap between 5 and 6 is in the window


def test_the_data_loader_reads_grey_and_rgb_output(tmp_path):
    for channels in (1, 3):
        folder = write_dataset(tmp_path / f"c{channels}", SynthSpec(count=20, channels=channels))
        loaded = load_source(folder, ImageShape(32, 20, channels), 10).train
        assert loaded.images.shape == (20, 32, 20, channels)
        assert list(loaded.labels) == [index % 10 for index in range(20)]


def test_classes_are_visibly_different():
    """A nearest-centroid classifier on raw pixels (polarity normalised) beats chance (10 %) by far."""
    items = render_dataset(SynthSpec(count=400, seed=11))
    x = np.stack([image[..., 0].astype(np.float32).ravel() for _, image in items])
    y = np.array([int(label) for label, _ in items])
    x = (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-6)
    x = np.where(np.median(x, 1, keepdims=True) > 0, -x, x)  # make the ink the bright side on every wheel
    centroids = np.stack([x[:300][y[:300] == c].mean(0) for c in range(10)])
    predicted = ((x[300:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
    assert np.mean(predicted == y[300:]) > 0.4


@pytest.mark.parametrize(
    "spec, message",
    [
        (SynthSpec(count=0), "--count"),
        (SynthSpec(count=5, nb_classes=11), "--classes"),
        (SynthSpec(count=5, channels=2), "--channels"),
    ],
)
def test_bad_arguments_are_user_errors(tmp_path, spec, message):
    with pytest.raises(UserError, match=message):
        write_dataset(tmp_path / "out", spec)
    assert not (tmp_path / "out").exists()


def test_a_non_empty_folder_needs_overwrite(tmp_path):
    out = write_dataset(tmp_path / "s", SynthSpec(count=3))
    with pytest.raises(UserError, match="--overwrite"):
        write_dataset(out, SynthSpec(count=4))
    write_dataset(out, SynthSpec(count=4), overwrite=True)
    assert len(labels_of(out)) == 4
