"""tf.data datasets: sources mixed by weight, cached, shuffled, batched, augmented, prefetched.

Each source becomes an endless shuffled stream; `sample_from_datasets` draws from them with the normalised
weights, so a small source with a large weight is seen as often as asked, not as often as it is large.
An epoch is as many batches as the training images of all sources hold.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from digits.config import DigitsConfig
from digits.data.augment import build_augmenter
from digits.data.sources import ImageShape, LabelledImages, load_source, require_data_sources, split_validation

log = logging.getLogger(__name__)
AUTOTUNE = tf.data.AUTOTUNE


@dataclass
class DigitsData:
    """Everything training and export need: the two tf.data datasets and the raw arrays behind them."""

    train: tf.data.Dataset
    validation: tf.data.Dataset
    steps_per_epoch: int
    train_parts: list[LabelledImages]
    validation_set: LabelledImages
    weights: list[float]

    def representative_images(self, count: int, seed: int = 0) -> np.ndarray:
        """`count` float [0, 1] training images drawn across sources, for INT8 calibration (how many the
        exports calibrate on is `digits.export.int8.CALIBRATION_IMAGES`)."""
        images = np.concatenate([part.images for part in self.train_parts])
        pick = np.random.default_rng(seed).permutation(len(images))[:count]
        return to_float(images[pick])


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1], the models' input range."""
    return images.astype(np.float32) / 255.0


def normalised_weights(weights: Sequence[float]) -> list[float]:
    total = float(sum(weights))
    return [float(w) / total for w in weights]


def _as_float(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.cast(images, tf.float32) / 255.0, labels


def mixed_stream(parts: Sequence[LabelledImages], weights: Sequence[float], seed: int) -> tf.data.Dataset:
    """An endless stream of (float image, class) drawn from `parts` in proportion to `weights`."""
    streams = []
    for index, part in enumerate(parts):
        # Shuffle uint8 and convert afterwards: the buffer holds the whole source, a quarter the size in bytes.
        ds = tf.data.Dataset.from_tensor_slices((part.images, part.labels)).cache()
        ds = ds.shuffle(len(part), seed=seed + index, reshuffle_each_iteration=True).repeat()
        streams.append(ds.map(_as_float, num_parallel_calls=AUTOTUNE))
    if len(streams) == 1:
        return streams[0]
    return tf.data.Dataset.sample_from_datasets(streams, weights=normalised_weights(weights), seed=seed)


def build_datasets(cfg: DigitsConfig, validation_dirs: Sequence[str | Path] = ()) -> DigitsData:
    """Read cfg.data_sources and build the training and validation tf.data datasets.

    Validation comes from `validation_dirs` when given, else from each source's `test/` folder, else from a
    seeded `validation_split` of that source.
    """
    train_parts, validation_set = load_splits(cfg, validation_dirs)
    return assemble_datasets(cfg, train_parts, validation_set, [source.weight for source in cfg.data_sources])


def load_splits(
    cfg: DigitsConfig, validation_dirs: Sequence[str | Path] = ()
) -> tuple[list[LabelledImages], LabelledImages]:
    """The training images of each source (in cfg.data_sources order) and the joint validation set."""
    require_data_sources(cfg)
    shape = ImageShape(cfg.input_height, cfg.input_width, cfg.input_channels)
    train_parts: list[LabelledImages] = []
    val_parts: list[LabelledImages] = []
    for index, source in enumerate(cfg.data_sources):
        loaded = load_source(source.path, shape, cfg.nb_classes)
        if validation_dirs or loaded.test is not None:
            train_parts.append(loaded.train)
            if loaded.test is not None and not validation_dirs:
                val_parts.append(loaded.test)
        else:
            train, val = split_validation(loaded.train, cfg.validation_split, cfg.seed + index)
            train_parts.append(train)
            val_parts.append(val)
    for folder in validation_dirs:
        loaded = load_source(folder, shape, cfg.nb_classes)
        val_parts.append(loaded.test if loaded.test is not None else loaded.train)
    validation_set = LabelledImages(
        np.concatenate([p.images for p in val_parts]), np.concatenate([p.labels for p in val_parts]), "validation"
    )
    return train_parts, validation_set


def assemble_datasets(
    cfg: DigitsConfig, train_parts: Sequence[LabelledImages], validation_set: LabelledImages, weights: Sequence[float]
) -> DigitsData:
    """Mix `train_parts` by `weights`, batch and augment per cfg; fine-tuning passes parts of its own making."""
    train_parts, weights = list(train_parts), list(weights)
    total_train = sum(len(part) for part in train_parts)
    steps = max(1, math.ceil(total_train / cfg.batch_size))
    log.info(
        "data: %d training images from %d source(s) (weights %s), %d validation images",
        total_train,
        len(train_parts),
        [round(w, 3) for w in normalised_weights(weights)],
        len(validation_set),
    )

    def one_hot(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return images, tf.one_hot(labels, cfg.nb_classes)

    train = mixed_stream(train_parts, weights, cfg.seed).batch(cfg.batch_size, drop_remainder=False)
    augmenter = build_augmenter(cfg.augmentation, cfg.seed)
    if augmenter is not None:
        # One batch at a time: the augmenter's random state advances per call, so parallel calls would draw
        # in whatever order threads run and the same seed would train a different model each time.
        train = train.map(lambda x, y: (tf.clip_by_value(augmenter(x, training=True), 0.0, 1.0), y))
    train = train.map(one_hot).prefetch(AUTOTUNE)
    validation = (
        tf.data.Dataset.from_tensor_slices((validation_set.images, validation_set.labels))
        .map(_as_float)
        .batch(cfg.batch_size)
        .map(one_hot)
        .cache()
        .prefetch(AUTOTUNE)
    )
    return DigitsData(train, validation, steps, train_parts, validation_set, weights)
