"""fine-tune and retrain: what each strategy freezes, how the streams are mixed, and both commands end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digits.training.runtime import limit_threads

limit_threads(1)

import keras  # noqa: E402

from digits import cli  # noqa: E402
from digits.architectures import build_model, list_models  # noqa: E402
from digits.config import load_digits_config  # noqa: E402
from digits.data.datasets import build_datasets  # noqa: E402
from digits.data.synth import SynthSpec, write_dataset  # noqa: E402
from digits.workflow.adapt_plan import FineTunePlan, with_bad_source  # noqa: E402
from digits.workflow.finetune import apply_strategy, fine_tune_data, load_trained_model  # noqa: E402
from experiments.errors import UserError  # noqa: E402
from tests.conftest import run_cli  # noqa: E402

MODEL = "digit_recognizer_v6"


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    """A synthetic source, a 'bad predictions' source of flat white images (easy to spot in a batch)."""
    root = tmp_path_factory.mktemp("finetune")
    synth = write_dataset(root / "synth", SynthSpec(count=120, seed=4))
    bad = root / "bad"
    bad.mkdir()
    lines = []
    for index in range(20):
        Image.new("L", (20, 32), 255).save(bad / f"bad_{index}.png")
        lines.append(f"bad_{index}.png\t{index % 10}")
    (bad / "labels.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"root": root, "synth": synth, "bad": bad}


@pytest.fixture(scope="module")
def saved_model(sources) -> Path:
    """An (untrained) v6 saved where `digits train` would put it, with the config it was 'trained' with."""
    from experiments.config import save_resolved_config

    cfg = config(sources, sources["root"] / "exported")
    folder = Path(cfg.export_dir) / cfg.export_group / MODEL
    folder.mkdir(parents=True)
    build_model(MODEL, (32, 20, 1), 10).save(folder / "best_model.keras")
    save_resolved_config(cfg, folder)
    return folder / "best_model.keras"


def config(sources: dict[str, Path], export_dir: Path, *extra: str):
    return load_digits_config(
        None,
        [
            f"data_sources=[{{path: '{sources['synth']}', weight: 1}}]",
            f"export_dir={export_dir}",
            f"model_architecture={MODEL}",
            "epochs=1",
            "batch_size=32",
            *extra,
        ],
    )


def trainable_layers(model: keras.Model) -> set[str]:
    return {layer.name for layer in model.layers if layer.trainable and layer.weights}


@pytest.mark.parametrize("name", list_models())
def test_strategies_freeze_what_they_should(name):
    model = build_model(name, (32, 20, 1), 10)
    weighted = {layer.name: layer for layer in model.layers if layer.weights}
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    convs = {n for n, layer in weighted.items() if len(layer.output.shape) == 4}

    apply_strategy(model, "last_layer")
    assert trainable_layers(model) == {dense[-1].name}
    assert len(model.trainable_weights) == 2  # the final Dense's kernel and bias

    apply_strategy(model, "feature_extractor")
    assert convs and not convs & trainable_layers(model)
    assert {layer.name for layer in dense} <= trainable_layers(model)

    apply_strategy(model, "full")
    assert trainable_layers(model) == set(weighted)


def test_bad_images_dominate_the_mixed_stream(sources):
    cfg = with_bad_source(config(sources, sources["root"] / "x", "augmentation.enabled=false"), sources["bad"], 10)
    batches = list(build_datasets(cfg).train.take(40))
    images = np.concatenate([x.numpy() for x, _ in batches])
    from_bad = np.all(images.reshape(len(images), -1) == 1.0, axis=1)
    assert len(images) == 40 * 32
    assert np.mean(from_bad) == pytest.approx(10 / 11, abs=0.04)


def test_a_listed_bad_folder_gets_its_weight_overridden(sources):
    spelled_differently = sources["bad"].parent / "synth" / ".." / "bad"
    cfg = load_digits_config(
        None,
        [f"data_sources=[{{path: '{sources['synth']}', weight: 1}}, {{path: '{spelled_differently}', weight: 1}}]"],
    )
    mixed = with_bad_source(cfg, sources["bad"], 7)
    assert [(Path(s.path), s.weight) for s in mixed.data_sources] == [(sources["synth"], 1.0), (sources["bad"], 7.0)]


def test_fine_tune_mix_follows_the_ratios(sources):
    cfg = config(sources, sources["root"] / "x")
    _, data = fine_tune_data(cfg, FineTunePlan(data_ratio=0.2, augmented_ratio=0.8))
    assert data.weights == pytest.approx([0.2, 0.8])
    assert len(data.train_parts[1]) == 2 * len(data.train_parts[0])  # two heavily augmented copies
    mixed, data = fine_tune_data(cfg, FineTunePlan(data_ratio=0.3, augmented_ratio=0.7, augmented_dir=sources["bad"]))
    assert [s.weight for s in mixed.data_sources] == pytest.approx([0.3, 0.7]) and len(data.train_parts) == 2


def test_fine_tune_end_to_end_keeps_frozen_layers(saved_model):
    before = keras.models.load_model(saved_model, compile=False)
    assert (
        cli.run(
            [
                "fine-tune",
                "--model_path",
                str(saved_model),
                "--strategy",
                "last_layer",
                "--threads",
                "1",
                "--learning_rate_multiplier",
                "0.5",
            ]
        )
        == 0
    )
    out = saved_model.parent.parent / f"{MODEL}_finetuned"
    assert {
        "best_model.keras",
        f"{MODEL}_finetuned_float.tflite",
        f"{MODEL}_finetuned_quantized.tflite",
        "metrics.json",
        "config.resolved.yaml",
    } <= {p.name for p in out.iterdir()}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["strategy"] == "last_layer" and metrics["learning_rate"] == pytest.approx(5e-4)
    after = keras.models.load_model(out / "best_model.keras", compile=False)
    changed = [not np.array_equal(a, b) for a, b in zip(before.get_weights(), after.get_weights())]
    assert changed[-2:] == [True, True] and not any(changed[:-2])


def test_retrain_end_to_end(saved_model, sources):
    assert (
        cli.run(
            ["retrain", "--model_path", str(saved_model), "--bad_images_dir", str(sources["bad"]), "--threads", "1"]
        )
        == 0
    )
    metrics = json.loads((saved_model.parent.parent / f"{MODEL}_finetuned" / "metrics.json").read_text())
    assert metrics["bad_weight"] == 10 and metrics["learning_rate"] == pytest.approx(1e-4)
    assert metrics["quantization"] == "ptq" and metrics["int8_tflite_accuracy"] is not None


@pytest.mark.parametrize(
    "args, message",
    [
        (["fine-tune", "--model_path", "missing/best_model.keras"], "model file not found"),
        (["fine-tune", "--model_path", "{model}", "--data_ratio", "0"], "--data_ratio"),
        (["fine-tune", "--model_path", "{model}", "--strategy", "everything"], "--strategy"),
        (["retrain", "--model_path", "{model}", "--bad_images_dir", "missing"], "--bad_images_dir"),
        (["retrain", "--model_path", "{model}", "--bad_images_dir", "{bad}", "--bad_weight", "-1"], "--bad_weight"),
        (["synth", "--out", "{bad}/s", "--count", "0"], "--count"),
    ],
)
def test_bad_flags_exit_2_with_one_line(saved_model, sources, args, message):
    argv = [a.format(model=saved_model, bad=sources["bad"]) for a in args]
    result = run_cli("digits", *argv, timeout=60)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_fine_tune_plan_rejects_a_missing_augmented_dir(tmp_path):
    with pytest.raises(UserError, match="--augmented_dir"):
        FineTunePlan(augmented_dir=tmp_path / "missing").validate()


def test_a_corrupt_model_file_is_a_user_error(tmp_path):
    (tmp_path / "best_model.keras").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a readable Keras model"):
        load_trained_model(tmp_path / "best_model.keras")


def test_a_truncated_model_file_is_unreadable_not_missing(saved_model, tmp_path):
    truncated = tmp_path / "best_model.keras"
    data = saved_model.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError) as caught:
        load_trained_model(truncated)
    assert str(caught.value).startswith(f"{truncated}: not a readable Keras model")
    assert "not found" not in str(caught.value).lower()
