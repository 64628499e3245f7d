"""One `digits tune` trial without Ray: every epoch reported with a checkpoint, INT8 scored once at the end (QAT
epochs counted), resumed trials continue where they stopped, images read once per process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from digits.training.runtime import limit_threads

limit_threads(1)

from digits.architectures.registry import ModelEntry, known_good_settings, model_entry  # noqa: E402
from digits.config import DigitsConfig  # noqa: E402
from digits.data.sklearn_import import import_sklearn_digits  # noqa: E402
from digits.tuning import trial as trial_module  # noqa: E402
from digits.tuning.trial import INT8_FILE, MODEL_FILE, read_state, train_trial, trial_data  # noqa: E402


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("trial-data") / "sk"
    import_sklearn_digits(root)
    for split, keep in (("train", 120), ("test", 60)):
        labels = root / split / "labels.txt"
        labels.write_text("\n".join(labels.read_text().splitlines()[:keep]) + "\n")
    return root


def trial_cfg(data: Path, **changes) -> DigitsConfig:
    return DigitsConfig.model_validate(
        {
            "model_architecture": "digit_recognizer_v6",
            "epochs": 3,
            "batch_size": 32,
            "learning_rate": 0.003,
            "optimizer": "adam",
            "data_sources": [{"path": str(data), "weight": 1}],
            "augmentation": {"enabled": False},
            "early_stopping": {"enabled": False},
            **changes,
        }
    )


class Recorder:
    """A reporter keeping every report and a copy of every checkpoint (the trial deletes its own)."""

    def __init__(self, keep: Path):
        self.keep, self.reports, self.checkpoints = keep, [], []

    def __call__(self, metrics: dict, folder: Path | None) -> None:
        self.reports.append(dict(metrics))
        if folder is not None:
            self.checkpoints.append(Path(shutil.copytree(folder, self.keep / f"ckpt{len(self.reports)}")))
        else:
            self.checkpoints.append(None)


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    recorder = Recorder(tmp_path_factory.mktemp("ckpts"))
    final = train_trial(trial_cfg(data_dir), recorder)
    return recorder, final


def test_every_epoch_is_reported_with_a_checkpoint_and_int8_only_at_the_end(trained):
    recorder, final = trained
    assert [r["epoch"] for r in recorder.reports] == [1, 2, 3]
    assert all("int8_accuracy" not in r for r in recorder.reports[:-1])
    assert recorder.reports[-1] == final and 0 <= final["int8_accuracy"] <= 1 and final["int8_size_bytes"] > 0
    assert final["trial_epochs"] == 3 and final["qat_epochs"] == 0 and final["val_images"] == 60
    best = [r["best_val_accuracy"] for r in recorder.reports]
    assert best == sorted(best)
    assert all((c / MODEL_FILE).is_file() for c in recorder.checkpoints)
    assert (recorder.checkpoints[-1] / INT8_FILE).stat().st_size == final["int8_size_bytes"]


def test_a_resumed_trial_continues_at_the_epoch_after_its_checkpoint(trained, data_dir, tmp_path):
    recorder, _ = trained
    assert read_state(recorder.checkpoints[0]).epoch == 1
    resumed = Recorder(tmp_path)
    train_trial(trial_cfg(data_dir), resumed, resume_from=recorder.checkpoints[0])
    assert [r["epoch"] for r in resumed.reports] == [2, 3]
    assert resumed.reports[-1]["trial_epochs"] == 3 and "int8_accuracy" in resumed.reports[-1]


def test_a_finished_trial_resumed_only_reports_its_result_again(trained, data_dir, tmp_path):
    recorder, final = trained
    again = Recorder(tmp_path)
    assert train_trial(trial_cfg(data_dir), again, resume_from=recorder.checkpoints[-1]) == final
    assert again.reports == [final]


def test_qat_fine_tuning_is_counted_in_the_trial_epochs(data_dir, tmp_path):
    recorder = Recorder(tmp_path)
    final = train_trial(trial_cfg(data_dir, epochs=2, use_qat=True), recorder)
    assert [r["epoch"] for r in recorder.reports] == [1, 2]
    assert final["qat_epochs"] == 1 and final["trial_epochs"] == 3


def test_images_are_read_once_per_process_whatever_the_batch_size(data_dir, tmp_path, monkeypatch):
    calls = []
    real = trial_module.load_splits
    monkeypatch.setattr(trial_module, "_SPLITS", {})
    monkeypatch.setattr(trial_module, "load_splits", lambda cfg: calls.append(cfg) or real(cfg))
    trial_data(trial_cfg(data_dir, batch_size=16))
    data = trial_data(trial_cfg(data_dir, batch_size=64, optimizer="sgd"))
    assert len(calls) == 1 and data.steps_per_epoch == 2
    other = tmp_path / "sk2"
    shutil.copytree(data_dir, other)
    trial_data(trial_cfg(other))
    assert len(calls) == 2


@pytest.mark.parametrize(
    "name, dropout", [("digit_recognizer_v6", 0.2), ("digit_recognizer_v12", 0.4), ("original_haverland", 0.5)]
)
def test_known_good_settings_are_the_original_defaults_with_the_architectures_own_dropout(name, dropout):
    settings = known_good_settings(name)
    defaults = DigitsConfig()
    assert settings["dropout"] == pytest.approx(dropout)
    assert (settings["optimizer"], settings["learning_rate"], settings["batch_size"], settings["use_qat"]) == (
        defaults.optimizer,
        defaults.learning_rate,
        defaults.batch_size,
        defaults.use_qat,
    )


def test_a_registration_recipe_overrides_the_defaults(monkeypatch):
    from digits.architectures import registry

    entry = model_entry("digit_recognizer_v6")
    patched = ModelEntry(
        entry.name, entry.factory, entry.embedded, entry.description, {"learning_rate": 0.0005, "batch_size": 64}
    )
    monkeypatch.setitem(registry._MODELS, entry.name, patched)
    settings = known_good_settings("digit_recognizer_v6")
    assert (settings["learning_rate"], settings["batch_size"], settings["dropout"]) == (0.0005, 64, 0.2)
