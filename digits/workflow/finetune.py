"""Adapting a trained model instead of training from scratch: `fine-tune` and `retrain` (on bad predictions).

Both load `best_model.keras`, continue training it on a mixed stream and export as usual into
`<export_dir>/<N>cls_<GRAY|RGB>/<model>_finetuned/` (best_model.keras, `<model>_finetuned_float.tflite`,
`<model>_finetuned_quantized.tflite`, metrics.json, ...): the original model's folder is left as it was
(adapting a `_finetuned` model again replaces that folder).

- fine-tune keeps a `data_ratio` share of the original sources and mixes in an `augmented_ratio` share of
  augmented data (a folder, or the original images heavily augmented) so the model does not forget what it
  knew; the strategy decides which layers stay frozen; the learning rate is scaled down.
- retrain adds the folder of bad predictions to the sources with a heavy weight and a low learning rate.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import keras
import numpy as np

from digits.architectures import list_models
from digits.config import AugmentationConfig, DataSource, DigitsConfig
from digits.data.augment import build_augmenter
from digits.data.datasets import DigitsData, assemble_datasets, build_datasets, load_splits, to_float
from digits.data.sources import LabelledImages
from digits.workflow.adapt_plan import (
    FINETUNED_SUFFIX,
    RETRAIN_LEARNING_RATE,
    STRATEGIES,
    FineTunePlan,
    check_learning_rate,
    require_model_file,
    scaled_sources,
    with_bad_source,
)
from digits.workflow.run import RunResult, train_and_export
from experiments.errors import UserError

log = logging.getLogger(__name__)

# Wider than the training ranges (5 deg, 10 %, 20 %, 20 %): the augmented share should look unlike the originals.
HEAVY_AUGMENTATION = AugmentationConfig(rotation_range=12.0, zoom_range=0.2, brightness_range=0.4, contrast_range=0.5)
HEAVY_COPIES = 2


def load_trained_model(path: str | Path) -> keras.Model:
    """A `.keras` model from disk; a missing or unreadable file is a one-line user error.

    Keras reports a `.keras` file that is not a whole zip archive (a truncated copy, another format) as "File
    not found", which misleads for a file that exists, so that case is named before Keras sees it.
    """
    path = require_model_file(path)
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise UserError(
            f"{path}: not a readable Keras model (not a complete .keras zip archive: truncated or "
            "another format); export it again"
        )
    try:
        return keras.models.load_model(path, compile=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else err.__class__.__name__
        raise UserError(f"{path}: not a readable Keras model ({first_line})") from None


def architecture_of(model: keras.Model, model_path: Path, fallback: str) -> str:
    """The registry name of a loaded model: its own name, else its folder's name, else the config's."""
    known = set(list_models())
    for candidate in (model.name, Path(model_path).parent.name.removesuffix(FINETUNED_SUFFIX)):
        if candidate in known:
            return candidate
    return fallback


def config_for_model(cfg: DigitsConfig, model: keras.Model, model_path: Path, **updates) -> DigitsConfig:
    """`cfg` made to match the loaded model (architecture, input size, channels, classes) plus `updates`."""
    _, height, width, channels = model.input_shape
    classes = model.output_shape[-1]
    fields = {
        "model_architecture": architecture_of(model, model_path, cfg.model_architecture),
        "input_height": height,
        "input_width": width,
        "input_channels": channels,
        "nb_classes": classes,
    }
    try:
        return DigitsConfig.model_validate({**cfg.model_dump(), **fields, **updates})
    except ValueError as err:
        raise UserError(f"{model_path}: model does not fit a digits config ({err})") from None


def apply_strategy(model: keras.Model, strategy: str) -> None:
    """Freeze layers: `full` none, `last_layer` all but the final Dense, `feature_extractor` the conv trunk.

    The trunk runs up to the last layer with a spatial (H, W, C) output; the head is what follows the pooling.
    Frozen BatchNormalization layers also stop updating their statistics (Keras runs them in inference mode).
    """
    if strategy not in STRATEGIES:
        raise UserError(f"--strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    model.trainable = True
    layers = model.layers
    dense = [layer for layer in layers if isinstance(layer, keras.layers.Dense)]
    head_start = 1 + max((i for i, layer in enumerate(layers) if len(layer.output.shape) == 4), default=-1)
    for index, layer in enumerate(layers):
        if strategy == "full":
            layer.trainable = True
        elif strategy == "last_layer":
            layer.trainable = bool(dense) and layer is dense[-1]
        else:
            layer.trainable = index >= head_start


def heavily_augmented(
    parts: list[LabelledImages], seed: int, copies: int = HEAVY_COPIES, batch_size: int = 256
) -> LabelledImages:
    """`copies` strongly augmented versions of every training image, as one more uint8 source."""
    augmenter = build_augmenter(HEAVY_AUGMENTATION, seed)
    assert augmenter is not None  # HEAVY_AUGMENTATION enables every layer
    images = np.concatenate([part.images for part in parts])
    labels = np.concatenate([part.labels for part in parts])
    out = []
    for _ in range(copies):
        for start in range(0, len(images), batch_size):
            batch = augmenter(to_float(images[start : start + batch_size]), training=True)
            out.append(np.clip(np.round(keras.ops.convert_to_numpy(batch) * 255.0), 0, 255).astype(np.uint8))
    return LabelledImages(np.concatenate(out), np.tile(labels, copies), "heavily augmented original sources")


def fine_tune_data(cfg: DigitsConfig, plan: FineTunePlan) -> tuple[DigitsConfig, DigitsData]:
    """The fine-tuning mix: originals at `data_ratio`, augmented data at `augmented_ratio` (of the draws)."""
    originals = scaled_sources(cfg.data_sources, plan.data_ratio)
    if plan.augmented_dir is not None:
        mixed = cfg.model_copy(
            update={
                "data_sources": originals + [DataSource(path=Path(plan.augmented_dir), weight=plan.augmented_ratio)]
            }
        )
        return mixed, build_datasets(mixed)
    parts, validation = load_splits(cfg)
    heavy = heavily_augmented(parts, cfg.seed)
    weights = [source.weight for source in originals] + [plan.augmented_ratio]
    return cfg, assemble_datasets(cfg, parts + [heavy], validation, weights)


def fine_tune(cfg: DigitsConfig, model_path: str | Path, plan: FineTunePlan, verbose: int = 2) -> RunResult:
    """Fine-tune the model at `model_path` per `plan`; exports `<model>_finetuned` and returns its result."""
    plan.validate()
    model = load_trained_model(model_path)
    learning_rate = cfg.learning_rate * plan.learning_rate_multiplier
    cfg = config_for_model(cfg, model, Path(model_path), learning_rate=learning_rate)
    apply_strategy(model, plan.strategy)
    cfg, data = fine_tune_data(cfg, plan)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    log.info(
        "fine-tuning %s (%s: %d trainable parameters) at lr %g", model_path, plan.strategy, trainable, cfg.learning_rate
    )
    extra = {
        "architecture": cfg.model_architecture,
        "fine_tuned_from": str(model_path),
        "strategy": plan.strategy,
        "data_ratio": plan.data_ratio,
        "augmented_ratio": plan.augmented_ratio,
        "augmented_data": str(plan.augmented_dir) if plan.augmented_dir else "heavy augmentation of sources",
        "learning_rate": cfg.learning_rate,
        "trainable_params": trainable,
    }
    return train_and_export(
        cfg,
        verbose=verbose,
        model=model,
        data=data,
        export_name=cfg.model_architecture + FINETUNED_SUFFIX,
        extra_metrics=extra,
    )


def retrain(
    cfg: DigitsConfig,
    model_path: str | Path,
    bad_dir: str | Path,
    bad_weight: float = 10.0,
    learning_rate: float = RETRAIN_LEARNING_RATE,
    verbose: int = 2,
) -> RunResult:
    """Retrain the model at `model_path` with the bad predictions up-weighted; PTQ INT8 export."""
    check_learning_rate(learning_rate)
    cfg = with_bad_source(cfg, bad_dir, bad_weight)
    model = load_trained_model(model_path)
    cfg = config_for_model(
        cfg,
        model,
        Path(model_path),
        learning_rate=learning_rate,
        quantize_model=True,
        use_qat=False,
        esp_dl_quantize=False,
    )
    apply_strategy(model, "full")
    extra = {
        "architecture": cfg.model_architecture,
        "fine_tuned_from": str(model_path),
        "bad_images_dir": str(bad_dir),
        "bad_weight": bad_weight,
        "learning_rate": learning_rate,
    }
    return train_and_export(
        cfg, verbose=verbose, model=model, export_name=cfg.model_architecture + FINETUNED_SUFFIX, extra_metrics=extra
    )
