"""Training-time augmentation with the original's ranges, as Keras preprocessing layers run inside tf.data."""

from __future__ import annotations

import keras

from digits.config import AugmentationConfig


def build_augmenter(aug: AugmentationConfig, seed: int) -> keras.Sequential | None:
    """Random zoom, small rotation, contrast and brightness on [0, 1] images; None when nothing is enabled.

    `fill_mode="nearest"` repeats the border instead of painting black corners, which a meter window never has.
    """
    if not aug.enabled:
        return None
    layers: list[keras.layers.Layer] = []
    if aug.rotation_range > 0:
        layers.append(keras.layers.RandomRotation(aug.rotation_range / 360.0, fill_mode="nearest", seed=seed))
    if aug.zoom_range > 0:
        layers.append(keras.layers.RandomZoom(aug.zoom_range, fill_mode="nearest", seed=seed + 1))
    if aug.contrast_range > 0:
        layers.append(keras.layers.RandomContrast(aug.contrast_range, value_range=(0.0, 1.0), seed=seed + 2))
    if aug.brightness_range > 0:
        layers.append(keras.layers.RandomBrightness(aug.brightness_range, value_range=(0.0, 1.0), seed=seed + 3))
    return keras.Sequential(layers, name="augmentation") if layers else None
