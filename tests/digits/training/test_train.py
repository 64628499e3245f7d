"""train_model: seeded training on real digits, per-epoch reporting, the best epoch saved atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from digits.training.runtime import limit_threads

limit_threads(1)

import keras  # noqa: E402

from digits.config import load_digits_config  # noqa: E402
from digits.data.datasets import to_float  # noqa: E402
from digits.data.sklearn_import import import_sklearn_digits  # noqa: E402
from digits.training.objective import make_optimizer  # noqa: E402
from digits.training.train import BEST_MODEL_NAME, model_dir_for, train_model  # noqa: E402
from experiments.errors import UserError  # noqa: E402


@pytest.fixture(scope="module")
def sklearn_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("digits-train") / "sk"
    import_sklearn_digits(root)
    return root


def small_config(root: Path, out: Path, *extra: str):
    return load_digits_config(
        None,
        [
            f"data_sources=[{{path: '{root}', weight: 1}}]",
            f"export_dir={out}",
            "model_architecture=digit_recognizer_v6",
            "epochs=3",
            "batch_size=32",
            "learning_rate=0.003",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def trained(sklearn_root, tmp_path_factory):
    reports: list[dict] = []
    cfg = small_config(sklearn_root, tmp_path_factory.mktemp("digits-train-out"))
    return cfg, train_model(cfg, reporter=reports.append, verbose=0), reports


def test_model_goes_to_the_export_group_folder(trained):
    cfg, result, _ = trained
    assert result.model_dir == Path(cfg.export_dir) / "10cls_GRAY" / "digit_recognizer_v6" == model_dir_for(cfg)
    assert result.best_model_path == result.model_dir / BEST_MODEL_NAME and result.best_model_path.is_file()


def test_reporter_gets_every_epoch(trained):
    _, result, reports = trained
    assert [r["epoch"] for r in reports] == [1, 2, 3]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(reports[0])
    assert [r["val_accuracy"] for r in reports] == pytest.approx(result.history["val_accuracy"])


def test_learns_real_digits_and_keeps_the_best_epoch(trained):
    _, result, _ = trained
    images, labels = to_float(result.data.validation_set.images), result.data.validation_set.labels
    accuracy = float(np.mean(result.model.predict(images, verbose=0).argmax(1) == labels))
    assert accuracy > 0.5
    assert accuracy == pytest.approx(max(result.history["val_accuracy"]), abs=1e-6)
    assert result.history["val_accuracy"][result.best_epoch - 1] == max(result.history["val_accuracy"])


def test_saved_best_model_reloads_with_the_same_outputs(trained):
    _, result, _ = trained
    images = to_float(result.data.validation_set.images[:16])
    reloaded = keras.models.load_model(result.best_model_path)
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), result.model.predict(images, verbose=0), atol=1e-6)
    leftovers = [p for p in result.model_dir.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]
    assert leftovers == []


def test_epoch_checkpoints_are_written(trained):
    _, result, _ = trained
    assert sorted(p.name for p in result.checkpoint_dir.glob("epoch_*.keras"))


@pytest.mark.parametrize("name", ["adam", "rmsprop", "sgd", "nadam", "adamw"])
def test_every_configured_optimizer_is_built(name):
    optimizer = make_optimizer(name, 0.01)
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(0.01)


def test_training_metric_monitor_is_refused(sklearn_root, tmp_path):
    cfg = small_config(sklearn_root, tmp_path, "early_stopping.monitor=accuracy")
    with pytest.raises(UserError, match="early_stopping.monitor"):
        train_model(cfg, verbose=0)


def test_a_data_source_that_fails_validation_leaves_no_export_folder(tmp_path):
    from digits.workflow.run import train_and_export

    empty = tmp_path / "empty-source"
    empty.mkdir()
    out = tmp_path / "exported"
    with pytest.raises(UserError, match="no labelled images"):
        train_and_export(small_config(empty, out), verbose=0)
    assert not out.exists()


def test_a_refused_setting_found_while_building_leaves_no_export_folder(sklearn_root, tmp_path):
    from digits.workflow.run import train_and_export

    out = tmp_path / "exported"
    with pytest.raises(UserError, match="early_stopping.monitor"):
        train_and_export(small_config(sklearn_root, out, "early_stopping.monitor=accuracy"), verbose=0)
    assert not out.exists()
