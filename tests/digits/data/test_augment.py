"""Augmentation: random per image and per batch inside tf.data, off when disabled, ranges from the config."""

from __future__ import annotations

import numpy as np

from digits.training.runtime import limit_threads

limit_threads(1)

import tensorflow as tf  # noqa: E402

from digits.config import AugmentationConfig  # noqa: E402
from digits.data.augment import build_augmenter  # noqa: E402


def bar_image() -> np.ndarray:
    image = np.zeros((32, 20, 1), np.float32)
    image[8:24, 8:12] = 1.0
    return image


def test_every_image_of_every_batch_gets_its_own_transform():
    augmenter = build_augmenter(AugmentationConfig(), seed=42)
    ds = tf.data.Dataset.from_tensors(bar_image()).repeat(12).batch(4).map(lambda x: augmenter(x, training=True))
    batches = [batch.numpy() for batch in ds]
    assert not np.allclose(batches[0][0], batches[0][1])
    assert not np.allclose(batches[0][0], batches[1][0])
    assert not np.allclose(batches[1][0], batches[2][0])


def test_disabled_or_zero_ranges_build_nothing():
    assert build_augmenter(AugmentationConfig(enabled=False), seed=0) is None
    none = AugmentationConfig(rotation_range=0, zoom_range=0, brightness_range=0, contrast_range=0)
    assert build_augmenter(none, seed=0) is None


def test_only_the_configured_transforms_are_applied():
    augmenter = build_augmenter(AugmentationConfig(rotation_range=0, zoom_range=0, contrast_range=0), seed=0)
    assert [type(layer).__name__ for layer in augmenter.layers] == ["RandomBrightness"]
    out = augmenter(bar_image()[np.newaxis].repeat(8, axis=0), training=True).numpy()
    shifts = out[:, 0, 0, 0] - 0.0  # a black pixel moves by the brightness delta only
    assert np.all(np.abs(shifts) <= 0.2 + 1e-6)
