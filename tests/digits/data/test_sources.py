"""Data sources: every folder layout, weighted mixing, validation split, and one-line errors naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digits.training.runtime import limit_threads

limit_threads(1)

from digits.config import load_digits_config  # noqa: E402
from digits.data.datasets import build_datasets, mixed_stream  # noqa: E402
from digits.data.sklearn_import import import_sklearn_digits  # noqa: E402
from digits.data.sources import ImageShape, load_source, split_validation  # noqa: E402
from experiments.errors import UserError  # noqa: E402

GRAY = ImageShape(32, 20, 1)


def write_image(path: Path, value: int, size: tuple[int, int] = (20, 32), mode: str = "L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color=value if mode == "L" else (value, value, value)).save(path)
    return path


def config(*sources: tuple[Path, float], **overrides) -> object:
    items = ", ".join(f"{{path: '{path}', weight: {weight}}}" for path, weight in sources)
    sets = [f"data_sources=[{items}]", "batch_size=8", "augmentation.enabled=false"]
    return load_digits_config(None, sets + [f"{key}={value}" for key, value in overrides.items()])


@pytest.fixture(scope="session")
def sklearn_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("digits-data") / "sk"
    import_sklearn_digits(root)
    return root


def test_label_file_source(tmp_path):
    write_image(tmp_path / "a.png", 10)
    write_image(tmp_path / "b.png", 200)
    (tmp_path / "labels.txt").write_text("a.png\t3\n# comment\n\nb.png\t7\n", encoding="utf-8")
    data = load_source(tmp_path, GRAY, 10).train
    assert data.labels.tolist() == [3, 7]
    assert data.images.shape == (2, 32, 20, 1) and data.images.dtype == np.uint8
    assert data.images[1].min() == 200


def test_label_file_readings_become_tenths_for_100_classes(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        write_image(tmp_path / name, 0)
    (tmp_path / "labels_extra.txt").write_text("a.png\t5.1\nb.png\t0\nc.png\t9.9\n", encoding="utf-8")
    assert load_source(tmp_path, GRAY, 100).train.labels.tolist() == [51, 0, 99]


def test_file_name_prefix_labels(tmp_path):
    write_image(tmp_path / "5.1_frame1.jpg", 0)
    write_image(tmp_path / "N_frame2.png", 0)
    write_image(tmp_path / "3_frame3.png", 0)
    assert sorted(load_source(tmp_path, GRAY, 11).train.labels.tolist()) == [3, 5, 10]


def test_file_name_prefix_readings_for_100_classes(tmp_path):
    write_image(tmp_path / "5.1_frame1.jpg", 0)
    write_image(tmp_path / "0.9_frame2.png", 0)
    assert sorted(load_source(tmp_path, GRAY, 100).train.labels.tolist()) == [9, 51]


def test_class_folders(tmp_path):
    for label in ("0", "4", "N"):
        for index in range(2):
            write_image(tmp_path / label / f"img{index}.png", 50)
    data = load_source(tmp_path, GRAY, 11).train
    assert data.labels.tolist() == [0, 0, 4, 4, 10, 10]


def test_rgb_and_resize(tmp_path):
    write_image(tmp_path / "7_big.png", 120, size=(40, 64), mode="RGB")
    data = load_source(tmp_path, ImageShape(32, 20, 3), 10).train
    assert data.images.shape == (1, 32, 20, 3)


def test_train_test_layout_uses_test_folder_for_validation(sklearn_root):
    data = build_datasets(config((sklearn_root, 1.0)))
    assert len(data.validation_set) == 360
    assert sum(len(part) for part in data.train_parts) == 1437


def test_validation_split_is_deterministic(sklearn_root):
    source = load_source(sklearn_root / "train", GRAY, 10).train
    train_a, val_a = split_validation(source, 0.25, seed=3)
    train_b, val_b = split_validation(source, 0.25, seed=3)
    assert np.array_equal(val_a.labels, val_b.labels) and np.array_equal(val_a.images, val_b.images)
    assert len(val_a) == round(len(source) * 0.25) and len(train_a) + len(val_a) == len(source)


def test_training_batches_are_float_one_hot(sklearn_root):
    data = build_datasets(config((sklearn_root / "train", 1.0), validation_split=0.2))
    images, targets = next(iter(data.train))
    assert images.shape == (8, 32, 20, 1) and images.dtype.name == "float32"
    assert 0.0 <= float(np.min(images)) and float(np.max(images)) <= 1.0
    assert targets.shape == (8, 10) and np.allclose(np.sum(targets, axis=1), 1.0)
    assert data.steps_per_epoch == int(np.ceil(1150 / 8))


def test_augmented_batches_stay_in_range(sklearn_root):
    cfg = load_digits_config(None, [f"data_sources=[{{path: '{sklearn_root}', weight: 1}}]", "batch_size=16"])
    images, _ = next(iter(build_datasets(cfg).train))
    assert 0.0 <= float(np.min(images)) and float(np.max(images)) <= 1.0


def test_the_same_seed_augments_the_same_batches(sklearn_root):
    # Augmentation draws from a stateful generator: only calls in batch order make a seeded run repeatable.
    cfg = load_digits_config(None, [f"data_sources=[{{path: '{sklearn_root}', weight: 1}}]", "batch_size=8"])

    def batches() -> list[np.ndarray]:
        return [images.numpy() for images, _ in build_datasets(cfg).train.take(60)]

    first, second = batches(), batches()
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_weighted_mixing_follows_weights(tmp_path):
    from digits.data.sources import LabelledImages

    parts = [
        LabelledImages(np.full((20, 32, 20, 1), value, np.uint8), np.full(20, label, np.int32), str(label))
        for label, value in ((0, 0), (1, 255))
    ]
    labels = np.array([int(y) for _, y in mixed_stream(parts, [3.0, 1.0], seed=1).take(2000)])
    assert 0.70 < np.mean(labels == 0) < 0.80


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="nowhere.*not found"):
        load_source(tmp_path / "nowhere", GRAY, 10)


def test_empty_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=f"{tmp_path}: no labelled images"):
        load_source(tmp_path, GRAY, 10)


def test_corrupt_image_names_the_file(tmp_path):
    (tmp_path / "3_broken.png").write_bytes(b"not a png at all")
    with pytest.raises(UserError, match="3_broken.png: cannot read image"):
        load_source(tmp_path, GRAY, 10)


def test_out_of_range_label_names_file_and_line(tmp_path):
    write_image(tmp_path / "a.png", 0)
    (tmp_path / "labels.txt").write_text("a.png\t3\na.png\t12\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"labels.txt:2: label '12' is out of range for 10 classes"):
        load_source(tmp_path, GRAY, 10)


def test_not_a_digit_label_needs_11_classes(tmp_path):
    write_image(tmp_path / "N_x.png", 0)
    with pytest.raises(UserError, match="N_x.png: label 'N'.*needs nb_classes 11"):
        load_source(tmp_path, GRAY, 10)


def test_label_file_naming_a_missing_image(tmp_path):
    (tmp_path / "labels.txt").write_text("ghost.png\t1\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"labels.txt:1: image 'ghost.png' not found"):
        load_source(tmp_path, GRAY, 10)


def test_malformed_label_line(tmp_path):
    (tmp_path / "labels.txt").write_text("only-a-name\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"labels.txt:1: expected 'filename<TAB>label'"):
        load_source(tmp_path, GRAY, 10)


def test_image_without_reading_prefix(tmp_path):
    write_image(tmp_path / "frame.png", 0)
    with pytest.raises(UserError, match="frame.png: no labels"):
        load_source(tmp_path, GRAY, 10)


def test_user_errors_are_one_line(tmp_path):
    (tmp_path / "labels.txt").write_text("a\tb\tc\n", encoding="utf-8")
    with pytest.raises(UserError) as info:
        load_source(tmp_path, GRAY, 10)
    assert "\n" not in str(info.value)


def test_explicit_validation_folder_replaces_the_split(sklearn_root):
    data = build_datasets(config((sklearn_root / "train", 1.0)), validation_dirs=[sklearn_root / "test"])
    assert len(data.validation_set) == 360
    assert sum(len(part) for part in data.train_parts) == 1437


def test_sources_mix_in_one_epoch_of_batches(sklearn_root, tmp_path):
    write_image(tmp_path / "small" / "N_a.png", 0)
    write_image(tmp_path / "small" / "N_b.png", 0)
    write_image(tmp_path / "small" / "N_c.png", 0)
    data = build_datasets(config((sklearn_root, 1.0), (tmp_path / "small", 1.0), nb_classes=11))
    labels = np.concatenate([np.argmax(y, axis=1) for _, y in data.train.take(20)])
    assert 0.35 < np.mean(labels == 10) < 0.65  # 2 training images, yet half the stream at equal weights
