"""Data sources on disk -> uint8 image arrays and class indices, with one-line errors that name the file.

A source folder is read in the first layout that fits:
1. `labels*.txt` files (`filename<TAB>label`, `#` comments and blank lines skipped), names relative to the folder;
2. one sub-folder per class, named by class (`0`..`9`, `N`, or a reading such as `5.1` for 100 classes);
3. images whose file name starts with the reading (`5.1_frame0042.jpg`, `N_x.png`);
4. `train/` (and optionally `test/`) sub-folders in one of the layouts above, as `digits import-sklearn` writes:
   `test/` then serves as this source's validation set instead of a `validation_split` of `train/`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from digits.config import DigitsConfig
from digits.data.labels import LabelError, class_index
from experiments.errors import UserError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class ImageShape:
    height: int
    width: int
    channels: int


@dataclass
class LabelledImages:
    """Images as uint8 (N, H, W, C) and class indices (N,), with where they came from (for messages)."""

    images: np.ndarray
    labels: np.ndarray
    origin: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: np.ndarray) -> LabelledImages:
        return LabelledImages(self.images[indices], self.labels[indices], self.origin)


@dataclass
class SourceData:
    """One data source: its training images and, when it ships a `test/` folder, its own validation images."""

    train: LabelledImages
    test: LabelledImages | None


def require_data_sources(cfg: DigitsConfig) -> None:
    """A config without data sources is a user error that shows how to add one."""
    if not cfg.data_sources:
        raise UserError(
            "data_sources is empty: add at least one {path: FOLDER, weight: 1.0} "
            "(e.g. --set 'data_sources=[{path: data/digits/sklearn, weight: 1}]')"
        )


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def load_image(path: Path, shape: ImageShape) -> np.ndarray:
    """One image as uint8 (H, W, C): grey or RGB as asked, resized (bilinear) when its size differs."""
    try:
        with Image.open(path) as opened:
            image = opened.convert("L" if shape.channels == 1 else "RGB")
            if image.size != (shape.width, shape.height):
                image = image.resize((shape.width, shape.height), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise UserError(f"{path}: image not found") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read image ({err.__class__.__name__}: {err})") from None
    return array.reshape(shape.height, shape.width, shape.channels)


def _label(reading: str, nb_classes: int, where: str) -> int:
    try:
        return class_index(reading, nb_classes)
    except LabelError as err:
        raise UserError(f"{where}: {err}") from None


def _from_label_files(folder: Path, files: list[Path], nb_classes: int) -> list[tuple[Path, int]]:
    items = []
    for labels_file in files:
        try:
            lines = labels_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"{labels_file}: cannot read labels file ({err})") from None
        for number, line in enumerate(lines, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            parts = text.split("\t") if "\t" in text else text.split()
            where = f"{labels_file}:{number}"
            if len(parts) != 2 or not parts[0].strip():
                raise UserError(f"{where}: expected 'filename<TAB>label', got {text!r}")
            name, reading = parts[0].strip(), parts[1].strip()
            path = folder / name
            if not path.is_file():
                raise UserError(f"{where}: image {name!r} not found in {folder}")
            items.append((path, _label(reading, nb_classes, where)))
    return items


def _from_class_folders(folders: list[Path], nb_classes: int) -> list[tuple[Path, int]]:
    items: list[tuple[Path, int]] = []
    for sub in folders:
        name = sub.name
        # A folder is named by its class: `51` is class 51 for 100 classes, `5.1` the reading 5.1.
        if nb_classes == 100 and name.isdigit():
            index = int(name)
            if index >= 100:
                raise UserError(f"{sub}: class folder {name!r} is out of range for 100 classes")
        else:
            index = _label(name, nb_classes, str(sub))
        items.extend((path, index) for path in sorted(sub.iterdir()) if _is_image(path))
    return items


def _from_file_names(images: list[Path], nb_classes: int) -> list[tuple[Path, int]]:
    items = []
    for path in images:
        prefix, sep, _ = path.stem.partition("_")
        if not sep:
            raise UserError(
                f"{path}: no labels*.txt in {path.parent} and the file name does not start with a "
                "reading (expected e.g. 5.1_name.png)"
            )
        items.append((path, _label(prefix, nb_classes, str(path))))
    return items


def list_labelled_files(folder: Path, nb_classes: int) -> list[tuple[Path, int]]:
    """(image path, class index) for every image of a flat source folder (layouts 1-3)."""
    label_files = sorted(p for p in folder.glob("labels*.txt") if p.is_file())
    if label_files:
        return _from_label_files(folder, label_files, nb_classes)
    class_folders = sorted(
        p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in ("train", "test")
    )
    if class_folders:
        return _from_class_folders(class_folders, nb_classes)
    return _from_file_names(sorted(p for p in folder.iterdir() if _is_image(p)), nb_classes)


def load_folder(folder: Path, shape: ImageShape, nb_classes: int) -> LabelledImages:
    """Read every image of a flat source folder; an empty folder is a user error."""
    items = list_labelled_files(folder, nb_classes)
    if not items:
        raise UserError(
            f"{folder}: no labelled images (expected labels*.txt, class sub-folders, or files named like 5.1_name.png)"
        )
    images = np.stack([load_image(path, shape) for path, _ in items])
    labels = np.asarray([index for _, index in items], dtype=np.int32)
    log.debug("read %d images from %s", len(labels), folder)
    return LabelledImages(images, labels, str(folder))


def load_source(path: str | Path, shape: ImageShape, nb_classes: int) -> SourceData:
    """Read one source folder in whichever layout it uses (see the module docstring)."""
    folder = Path(path)
    if not folder.is_dir():
        raise UserError(
            f"{folder}: data source folder not found"
            if not folder.exists()
            else f"{folder}: data source is not a folder"
        )
    train_dir, test_dir = folder / "train", folder / "test"
    has_own_layout = any(folder.glob("labels*.txt")) or any(_is_image(p) for p in folder.iterdir())
    if train_dir.is_dir() and not has_own_layout:
        test = load_folder(test_dir, shape, nb_classes) if test_dir.is_dir() else None
        return SourceData(load_folder(train_dir, shape, nb_classes), test)
    return SourceData(load_folder(folder, shape, nb_classes), None)


def split_validation(data: LabelledImages, fraction: float, seed: int) -> tuple[LabelledImages, LabelledImages]:
    """A deterministic (seeded) random split into (train, validation); both keep at least one image."""
    count = len(data)
    if count < 2:
        raise UserError(
            f"{data.origin}: {count} image(s) cannot be split into training and validation "
            "(add images or a test/ folder)"
        )
    order = np.random.default_rng(seed).permutation(count)
    n_val = min(max(1, int(round(count * fraction))), count - 1)
    return data.subset(np.sort(order[n_val:])), data.subset(np.sort(order[:n_val]))
