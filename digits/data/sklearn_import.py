"""scikit-learn's handwritten digits (real data shipped inside the package) in the label-file format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from experiments.io import atomic_directory


def import_sklearn_digits(
    out: str | Path,
    height: int = 32,
    width: int = 20,
    test_fraction: float = 0.2,
    seed: int = 42,
    overwrite: bool = False,
) -> dict[str, int]:
    """Write `out/train` and `out/test`, each a folder of PNGs with a `labels.txt` (`filename<TAB>label`).

    The 8x8 images (ink 0..16) are bicubic-resized to `height` x `width` grey PNGs. The split is stratified
    by class with a fixed seed, so "the scikit-learn digits test split" means the same 360 images everywhere.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = (bunch.images / 16.0 * 255.0).clip(0, 255).astype(np.uint8)
    indices = np.arange(len(images))
    train_idx, test_idx = train_test_split(indices, test_size=test_fraction, random_state=seed, stratify=bunch.target)
    counts = {}
    with atomic_directory(out, overwrite=overwrite) as tmp:
        for split, split_idx in (("train", train_idx), ("test", test_idx)):
            folder = tmp / split
            folder.mkdir()
            lines = []
            for index in sorted(split_idx):
                name = f"sklearn_{index:04d}.png"
                image = Image.fromarray(images[index], mode="L").resize((width, height), Image.Resampling.BICUBIC)
                image.save(folder / name)
                lines.append(f"{name}\t{int(bunch.target[index])}")
            (folder / "labels.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
            counts[split] = len(lines)
    return counts
