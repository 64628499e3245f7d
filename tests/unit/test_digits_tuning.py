"""digits tune without a cluster: the conditional space, canonical configurations, the unique-trial searcher."""
from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from ray.tune.search import Searcher

from digits.tuning.cli import add_tune_parser
from digits.tuning.config import TuneConfig, load_tune_config
from digits.tuning.space import DefineByRun, canonical, config_key, hyperparameters, trial_digits_config
from digits.tuning.unique import CACHE_NAME, ResultCache, UniqueSearcher
from experiments.errors import UserError


def ask(space_overrides: list[str], seed: int = 0, count: int = 30) -> list[dict]:
    tcfg = load_tune_config("tune", space_overrides)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    asked = []
    for _ in range(count):
        trial = study.ask()
        DefineByRun(tcfg.space)(trial)
        asked.append(trial.params)
    return asked


def test_shipped_tune_preset_loads():
    tcfg = load_tune_config("experiments/digits/tune.yaml")
    assert tcfg.objective == "single" and "digit_recognizer_v6" in tcfg.space.architectures


def test_focal_alpha_is_asked_only_with_focal_loss_and_smoothing_only_without():
    for params in ask([]):
        if params["focal_gamma"] > 0:
            assert "focal_alpha" in params and "label_smoothing" not in params
        else:
            assert "label_smoothing" in params and "focal_alpha" not in params


def test_per_architecture_range_is_its_own_optuna_parameter():
    asked = ask(["space.architectures=[digit_recognizer_v6, digit_recognizer_v4]",
                 "space.per_architecture={digit_recognizer_v4: {batch_size: [64]}}",
                 "space.batch_size=[16, 32]"])
    tcfg = load_tune_config("tune", ["space.per_architecture={digit_recognizer_v4: {batch_size: [64]}}"])
    v4 = [p for p in asked if p["architecture"] == "digit_recognizer_v4"]
    assert v4 and all(hyperparameters(p, tcfg.space)["batch_size"] == 64 for p in v4)
    assert all("batch_size" in p for p in asked if p["architecture"] == "digit_recognizer_v6")


def test_knobs_without_effect_do_not_change_the_key():
    base = {"architecture": "v6", "optimizer": "adam", "learning_rate": 0.001, "batch_size": 32, "dropout": 0.2,
            "quantization": "ptq"}
    assert config_key({**base, "focal_gamma": 0.0, "focal_alpha": 0.1, "label_smoothing": 0.1}) == \
        config_key({**base, "focal_gamma": 0.0, "focal_alpha": 0.9, "label_smoothing": 0.1})
    assert config_key({**base, "focal_gamma": 2.0, "focal_alpha": 0.3, "label_smoothing": 0.0}) == \
        config_key({**base, "focal_gamma": 2.0, "focal_alpha": 0.3, "label_smoothing": 0.2})
    assert config_key({**base, "focal_gamma": 2.0, "focal_alpha": 0.3}) != \
        config_key({**base, "focal_gamma": 2.0, "focal_alpha": 0.4})
    assert canonical({"learning_rate": 0.1 + 0.2}) == canonical({"learning_rate": 0.3})


def test_trial_config_applies_the_knobs_to_the_base():
    cfg = trial_digits_config(TuneConfig().base, {"architecture": "digit_recognizer_v7", "optimizer": "sgd",
                                                  "focal_gamma": 2.0, "focal_alpha": 0.4, "quantization": "qat",
                                                  "dropout": 0.1}, epochs=3)
    assert (cfg.model_architecture, cfg.optimizer, cfg.epochs, cfg.focal_alpha, cfg.use_qat, cfg.dropout) == \
        ("digit_recognizer_v7", "sgd", 3, 0.4, True, 0.1)


@pytest.mark.parametrize("override, where", [("space.bogus=1", "space.bogus: unknown key"),
                                             ("grace_period=50", "grace_period"),
                                             ("space.learning_rate={low: 0, high: 1, log: true}", "log range")])
def test_bad_tune_settings_are_one_line_user_errors(override, where):
    with pytest.raises(UserError, match=where) as err:
        load_tune_config("tune", [override])
    assert "\n" not in str(err.value)


def test_tune_command_reports_bad_keys_with_exit_2(capsys):
    from digits.cli import run

    assert run(["tune", "--set", "space.bogus=1"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: --set space.bogus=1: space.bogus: unknown key")


# ---------------------------------------------------------------------------------------------------------
# UniqueSearcher with a scripted inner searcher
# ---------------------------------------------------------------------------------------------------------
class ScriptedSearcher(Searcher):
    """Suggests the given configs in order and records what it is told."""

    def __init__(self, configs: list[dict]):
        super().__init__(metric="int8_accuracy", mode="max")
        self.configs = list(configs)
        self.told: dict[str, dict | None] = {}

    def suggest(self, trial_id: str):
        return self.configs.pop(0) if self.configs else Searcher.FINISHED

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.told[trial_id] = result


def unique(configs: list[dict], tmp_path: Path, max_repeats: int = 5) -> tuple[UniqueSearcher, ScriptedSearcher]:
    inner = ScriptedSearcher(configs)
    return UniqueSearcher(inner, canonical, config_key, tmp_path / CACHE_NAME, max_repeats), inner


A = {"optimizer": "adam", "focal_gamma": 0.0, "label_smoothing": 0.1, "focal_alpha": 0.2}
A_SAME = {"optimizer": "adam", "focal_gamma": 0.0, "label_smoothing": 0.1, "focal_alpha": 0.9}
B = {"optimizer": "sgd", "focal_gamma": 0.0, "label_smoothing": 0.1}


def test_a_finished_configuration_is_answered_from_the_cache(tmp_path):
    searcher, inner = unique([A, A_SAME, B], tmp_path)
    assert searcher.suggest("t1") == A
    searcher.on_trial_complete("t1", {"int8_accuracy": 0.9, "config": A})
    assert searcher.suggest("t2") == B  # A_SAME skipped: its result came from the cache
    repeat_ids = [tid for tid, result in inner.told.items() if tid.startswith("t2")]
    assert len(repeat_ids) == 1 and inner.told[repeat_ids[0]]["int8_accuracy"] == 0.9
    assert searcher.cache.repeats_answered == 1


def test_a_repeat_of_a_running_trial_waits_for_its_result(tmp_path):
    searcher, inner = unique([A, A_SAME, B], tmp_path)
    assert searcher.suggest("t1") == A
    assert searcher.suggest("t2") == B
    waiting = [tid for tid in inner.told]
    assert waiting == []  # the repeat is parked, not answered yet
    searcher.on_trial_complete("t1", {"int8_accuracy": 0.5})
    assert sorted(r["int8_accuracy"] for r in inner.told.values()) == [0.5, 0.5]


def test_an_exhausted_space_ends_the_search(tmp_path):
    searcher, _ = unique([A] + [A_SAME] * 10, tmp_path, max_repeats=3)
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", {"int8_accuracy": 0.5})
    assert searcher.suggest("t2") == Searcher.FINISHED


def test_the_cache_outlives_the_searcher(tmp_path):
    searcher, _ = unique([A], tmp_path)
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", {"int8_accuracy": 0.7, "config": A, "nested": {"x": 1}})
    cache = ResultCache(tmp_path / CACHE_NAME)
    assert cache.get(config_key(canonical(A_SAME)))["int8_accuracy"] == 0.7
    again, inner = unique([A_SAME, B], tmp_path)
    assert again.suggest("t9") == B
    assert json.loads((tmp_path / CACHE_NAME).read_text())["repeats_answered"] == 1


def test_errored_trials_are_not_cached_and_release_their_repeats(tmp_path):
    searcher, inner = unique([A, A_SAME, B], tmp_path)
    searcher.suggest("t1")
    searcher.suggest("t2")
    searcher.on_trial_complete("t1", None, error=True)
    assert searcher.cache.get(config_key(canonical(A))) is None
    assert list(inner.told.values()) == [None, None]


def test_state_round_trips_through_tune_wrapper_protocol(tmp_path):
    searcher, _ = unique([A, B], tmp_path)
    searcher.suggest("t1")
    state = searcher.get_state()
    fresh, _ = unique([], tmp_path)
    fresh.set_state(state)
    assert fresh._running.keys() == {"t1"} and fresh.cache.path == tmp_path / CACHE_NAME


def test_tune_parser_maps_flags_to_overrides():
    import argparse

    from digits.tuning.cli import tune_overrides

    parser = argparse.ArgumentParser()
    add_tune_parser(parser.add_subparsers())
    args = parser.parse_args(["tune", "--num-samples", "6", "--gpus-per-trial", "0.25", "--name", "x"])
    assert tune_overrides(args) == ["num_samples=6", "gpus_per_trial=0.25", "name=x"]


def test_experiments_validate_knows_tune_files(capsys):
    from experiments.cli import run

    assert run(["validate", "experiments/digits/tune.yaml"]) == 0
    assert run(["validate", "experiments/digits/tune.yaml", "--set", "space.bogus=1"]) == 2
    assert "space.bogus: unknown key" in capsys.readouterr().err


def test_train_use_tuner_reads_the_tune_settings_before_anything_runs(tmp_path, capsys):
    from digits.cli import run

    (tmp_path / "data").mkdir()
    argv = ["train", "--set", f"data_sources=[{{path: '{tmp_path / 'data'}', weight: 1}}]", "--use_tuner",
            "--tune-config", str(tmp_path / "missing.yaml")]
    assert run(argv) == 2
    assert "missing.yaml: config file not found" in capsys.readouterr().err
