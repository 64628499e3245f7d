"""digits tune without a cluster: the conditional space, canonical configurations, the unique-trial searcher."""

from __future__ import annotations

import json
import tempfile
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
    asked = ask(
        [
            "space.architectures=[digit_recognizer_v6, digit_recognizer_v4]",
            "space.per_architecture={digit_recognizer_v4: {batch_size: [64]}}",
            "space.batch_size=[16, 32]",
        ]
    )
    tcfg = load_tune_config("tune", ["space.per_architecture={digit_recognizer_v4: {batch_size: [64]}}"])
    v4 = [p for p in asked if p["architecture"] == "digit_recognizer_v4"]
    assert v4 and all(hyperparameters(p, tcfg.space)["batch_size"] == 64 for p in v4)
    assert all("batch_size" in p for p in asked if p["architecture"] == "digit_recognizer_v6")


def test_knobs_without_effect_do_not_change_the_key():
    base = {
        "architecture": "v6",
        "optimizer": "adam",
        "learning_rate": 0.001,
        "batch_size": 32,
        "dropout": 0.2,
        "quantization": "ptq",
    }
    assert config_key({**base, "focal_gamma": 0.0, "focal_alpha": 0.1, "label_smoothing": 0.1}) == config_key(
        {**base, "focal_gamma": 0.0, "focal_alpha": 0.9, "label_smoothing": 0.1}
    )
    assert config_key({**base, "focal_gamma": 2.0, "focal_alpha": 0.3, "label_smoothing": 0.0}) == config_key(
        {**base, "focal_gamma": 2.0, "focal_alpha": 0.3, "label_smoothing": 0.2}
    )
    assert config_key({**base, "focal_gamma": 2.0, "focal_alpha": 0.3}) != config_key(
        {**base, "focal_gamma": 2.0, "focal_alpha": 0.4}
    )
    assert canonical({"learning_rate": 0.1 + 0.2}) == canonical({"learning_rate": 0.3})


def test_trial_config_applies_the_knobs_to_the_base():
    cfg = trial_digits_config(
        TuneConfig().base,
        {
            "architecture": "digit_recognizer_v7",
            "optimizer": "sgd",
            "focal_gamma": 2.0,
            "focal_alpha": 0.4,
            "quantization": "qat",
            "dropout": 0.1,
        },
        epochs=3,
    )
    assert (cfg.model_architecture, cfg.optimizer, cfg.epochs, cfg.focal_alpha, cfg.use_qat, cfg.dropout) == (
        "digit_recognizer_v7",
        "sgd",
        3,
        0.4,
        True,
        0.1,
    )


@pytest.mark.parametrize(
    "override, where",
    [
        ("space.bogus=1", "space.bogus: unknown key"),
        ("grace_period=50", "grace_period"),
        ("space.learning_rate={low: 0, high: 1, log: true}", "log range"),
    ],
)
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
    argv = [
        "train",
        "--set",
        f"data_sources=[{{path: '{tmp_path / 'data'}', weight: 1}}]",
        "--use_tuner",
        "--tune-config",
        str(tmp_path / "missing.yaml"),
    ]
    assert run(argv) == 2
    assert "missing.yaml: config file not found" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------
# Budget: all training counted, never overrun
# ---------------------------------------------------------------------------------------------------------
def test_budget_and_trial_count_settings_are_checked():
    with pytest.raises(UserError, match="set budget_epochs .* or num_samples"):
        load_tune_config("tune", ["budget_epochs=null", "num_samples=null"])
    with pytest.raises(UserError, match=r"budget_epochs \(11\) is less than one trial's 12 epochs") as err:
        load_tune_config("tune", ["budget_epochs=11", "epochs_per_trial=10"])  # 10 + 2 QAT epochs
    assert "\n" not in str(err.value)
    assert load_tune_config("tune", ["budget_epochs=10", "space.quantization=[ptq]"]).max_trial_epochs == 10


def test_a_qat_trial_costs_its_fine_tuning_epochs_too():
    from digits.tuning.budget import trial_epochs

    tcfg = load_tune_config("tune", ["epochs_per_trial=10"])
    assert trial_epochs({"architecture": "digit_recognizer_v6", "quantization": "qat"}, tcfg) == 12
    assert trial_epochs({"architecture": "digit_recognizer_v6", "quantization": "ptq"}, tcfg) == 10


def test_budget_flag_maps_to_the_budget_key():
    import argparse

    from digits.tuning.cli import tune_overrides

    parser = argparse.ArgumentParser()
    add_tune_parser(parser.add_subparsers())
    assert tune_overrides(parser.parse_args(["tune", "--budget-epochs", "40"])) == ["budget_epochs=40"]


class CountingSearcher(ScriptedSearcher):
    def __init__(self, count: int):
        super().__init__([{"optimizer": f"o{i}", "quantization": "ptq"} for i in range(count)])


def budgeted(total: int, per_trial: int = 4, count: int = 100):
    from digits.tuning.budget import BudgetSearcher

    inner = CountingSearcher(count)
    return BudgetSearcher(inner, total, per_trial, lambda config: per_trial), inner


def test_budget_waits_for_running_trials_and_finishes_when_nothing_fits():
    searcher, _ = budgeted(10)
    assert isinstance(searcher.suggest("t1"), dict) and isinstance(searcher.suggest("t2"), dict)
    assert searcher.suggest("t3") is None  # 8 reserved + 4 > 10: wait
    searcher.on_trial_result("t1", {"trial_epochs": 1})
    searcher.on_trial_complete("t1", {"trial_epochs": 1})  # stopped at epoch 1: 3 epochs freed
    assert isinstance(searcher.suggest("t3"), dict)  # 1 + 4 + 4 <= 10
    assert searcher.suggest("t4") is None
    searcher.on_trial_complete("t2", {"trial_epochs": 4})
    searcher.on_trial_complete("t3", {"trial_epochs": 4})
    assert searcher.suggest("t5") == Searcher.FINISHED  # 9 spent, nothing running, 4 > 1 left


def test_a_simulated_search_never_spends_more_than_its_budget():
    rng = __import__("random").Random(0)
    searcher, _ = budgeted(37, per_trial=5)
    running: dict[str, int] = {}
    spent, serial = 0, 0
    while True:
        serial += 1
        config = searcher.suggest(f"t{serial}") if len(running) < 3 else None
        if config == Searcher.FINISHED:
            break
        if isinstance(config, dict):
            running[f"t{serial}"] = rng.choice([1, 3, 5])  # the epoch a trial will stop at
        trial_id = next(iter(running))
        epochs = running.pop(trial_id)
        for epoch in range(1, epochs + 1):
            searcher.on_trial_result(trial_id, {"trial_epochs": epoch})
        spent += epochs
        searcher.on_trial_complete(trial_id, {"trial_epochs": epochs})
    assert not running and spent <= 37 and spent > 37 - 5
    assert searcher.budget.used == spent


class FixableSearcher(ScriptedSearcher):
    """Suggests QAT trials unless parameters are fixed (as TrialOptunaSearch.fix_params does)."""

    def __init__(self):
        super().__init__([])
        self.fixed: dict | None = None

    def fix_params(self, params: dict | None) -> None:
        self.fixed = params

    def suggest(self, trial_id: str):
        return {"optimizer": "adam", "quantization": "qat", **(self.fixed or {})}


def test_a_remainder_too_small_for_qat_is_spent_on_a_ptq_trial():
    from digits.tuning.budget import BudgetSearcher

    inner = FixableSearcher()
    cost = {"qat": 6, "ptq": 5}
    searcher = BudgetSearcher(inner, 17, 6, lambda config: cost[config["quantization"]], (5, {"quantization": "ptq"}))
    for trial_id in ("t1", "t2"):
        assert searcher.suggest(trial_id)["quantization"] == "qat"
        searcher.on_trial_complete(trial_id, {"trial_epochs": 6})
    assert searcher.suggest("t3")["quantization"] == "ptq"  # 12 spent: 5 left, a QAT trial would cost 6
    assert inner.fixed is None  # fixed for that suggestion only
    searcher.on_trial_complete("t3", {"trial_epochs": 5})
    assert searcher.suggest("t4") == Searcher.FINISHED and searcher.budget.used == 17
    without, _ = budgeted(17, per_trial=6)  # no cheaper trial known: the remainder stays unspent
    for trial_id in ("t1", "t2"):
        without.suggest(trial_id)
        without.on_trial_complete(trial_id, {"trial_epochs": 6})
    assert without.suggest("t3") == Searcher.FINISHED


def test_the_ptq_fallback_fixes_every_quantization_parameter_and_optuna_keeps_it(tmp_path):
    from digits.tuning.search import build_searcher, ptq_params

    tcfg = load_tune_config(
        "tune",
        [
            f"storage_path={tmp_path}",
            "name=p",
            "epochs_per_trial=5",
            "grace_period=3",
            "budget_epochs=11",
            "max_concurrent=1",
            "warm_start=false",
            "space.per_architecture={digit_recognizer_v4: {quantization: [ptq, qat]}}",
        ],
    )
    assert ptq_params(tcfg) == (5, {"quantization": "ptq", "quantization@digit_recognizer_v4": "ptq"})
    ptq_only = tcfg.space.model_copy(update={"quantization": ["ptq"], "per_architecture": {}})
    assert ptq_params(tcfg.model_copy(update={"space": ptq_only})) is None
    tcfg.experiment_dir.mkdir(parents=True)
    searcher = build_searcher(tcfg, [])
    budget = searcher.searcher
    budget.budget.spent["earlier"] = 6  # 5 left: only a PTQ trial fits
    for serial in range(5):
        config = searcher.suggest(f"t{serial}")
        assert hyperparameters(config, tcfg.space)["quantization"] == "ptq"
        budget.budget.running.clear()
        searcher.on_trial_complete(f"t{serial}", {"trial_epochs": 0})


def test_budget_state_round_trips(tmp_path):
    searcher, _ = budgeted(20)
    searcher.suggest("t1")
    searcher.on_trial_result("t1", {"trial_epochs": 2})
    fresh, _ = budgeted(20)
    fresh.set_state(searcher.get_state())
    assert fresh.budget.used == 2 and fresh.budget.running == {"t1": 4}


# ---------------------------------------------------------------------------------------------------------
# Rungs: cut only where the float signal separates trials
# ---------------------------------------------------------------------------------------------------------
def rungs(tmp_path: Path | None = None, margin: float = 2.0):
    from digits.tuning.rungs import RUNGS_NAME, Rungs

    return Rungs(
        grace_period=3,
        reduction_factor=3,
        max_epochs=10,
        margin_se=margin,
        path=tmp_path / RUNGS_NAME if tmp_path else None,
    )


def test_rungs_sit_at_grace_period_times_powers_of_the_reduction_factor():
    assert rungs().milestones == [3, 9]


def test_trials_near_chance_are_not_cut_on_a_few_images():
    rule = rungs()
    for index, value in enumerate([0.17, 0.16, 0.17, 0.15]):
        assert rule.decide(f"good{index}", 3, value, images=100)
    assert rule.decide("slightly_worse", 3, 0.11, images=100)  # 6 images behind on 100: noise


def test_a_trial_clearly_behind_at_a_rung_is_stopped():
    rule = rungs()
    for index, value in enumerate([0.80, 0.85, 0.78]):
        assert rule.decide(f"t{index}", 3, value, images=100)
    assert not rule.decide("weak", 3, 0.40, images=100)
    assert rule.decide("close", 3, 0.79, images=100)


def test_without_a_margin_a_one_image_difference_cuts():
    rule = rungs(margin=0.0)
    for index in range(3):
        rule.decide(f"t{index}", 3, 0.50, images=100)
    assert not rule.decide("one_image_behind", 3, 0.49, images=100)


def test_a_trial_is_judged_once_per_rung_and_records_survive_a_restart(tmp_path):
    rule = rungs(tmp_path)
    for index, value in enumerate([0.8, 0.85, 0.9]):
        rule.decide(f"t{index}", 3, value, images=200)
    assert not rule.decide("weak", 4, 0.3, images=200)  # a late first result counts at the rung it passed
    assert rule.decide("weak", 5, 0.3, images=200)  # already judged at rung 3
    again = rungs(tmp_path)
    assert set(again.recorded[3]) == {"t0", "t1", "t2", "weak"}
    assert not again.decide("weak2", 3, 0.3, images=200)


# ---------------------------------------------------------------------------------------------------------
# Warm start from the registry's known-good settings
# ---------------------------------------------------------------------------------------------------------
KNOWN = {
    "optimizer": "nadam",
    "learning_rate": 0.001,
    "batch_size": 32,
    "label_smoothing": 0.1,
    "focal_gamma": 0.0,
    "focal_alpha": 0.25,
    "dropout": 0.3,
    "use_qat": False,
}


def test_warm_start_points_are_the_known_settings_under_their_optuna_names():
    from digits.tuning.warm_start import warm_start_points

    tcfg = load_tune_config("tune")
    points = warm_start_points(tcfg.space, lambda name: dict(KNOWN, dropout=0.2 if name.endswith("v6") else 0.3))
    assert [p["architecture"] for p in points] == tcfg.space.architectures
    v6, v4 = points[0], points[2]
    assert v6 == {
        "architecture": "digit_recognizer_v6",
        "optimizer": "nadam",
        "learning_rate": 0.001,
        "batch_size": 32,
        "focal_gamma": 0.0,
        "label_smoothing": 0.1,
        "dropout": 0.2,
        "quantization": "ptq",
    }
    assert v4["batch_size@digit_recognizer_v4"] == 32 and "batch_size" not in v4
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial(v4)
    trial = study.ask()
    DefineByRun(tcfg.space)(trial)
    assert trial.params == v4  # Optuna asks exactly these knobs, with these values


def test_warm_start_points_of_short_trials_take_more_and_larger_steps():
    from digits.tuning.warm_start import experiment_warm_start_points, for_trial_length, warm_start_points

    tcfg = load_tune_config("tune", ["epochs_per_trial=5", "base.epochs=100"])
    known = lambda name: dict(KNOWN)  # noqa: E731
    v6, v7, v4 = warm_start_points(tcfg.space, known, trial_epochs=5, full_epochs=100)
    # 100 epochs at batch 32 -> 5 at batch 16: 40 times fewer steps, learning rate x sqrt(40)
    assert v6["batch_size"] == 16 and v6["learning_rate"] == pytest.approx(0.00632)
    assert v4["batch_size@digit_recognizer_v4"] == 32 and v4["learning_rate"] == pytest.approx(0.00447)  # [32, 64]
    assert v6["quantization"] == "qat" == v4["quantization"]
    moved = ("learning_rate", "batch_size", "quantization")
    assert {k: v for k, v in v6.items() if k not in moved} == {
        k: v for k, v in warm_start_points(tcfg.space, known)[0].items() if k not in moved
    }
    assert for_trial_length(tcfg.space, "digit_recognizer_v6", KNOWN, 1, 100)["learning_rate"] == 0.01  # capped
    assert for_trial_length(tcfg.space, "digit_recognizer_v6", KNOWN, 100, 100) == KNOWN  # a full training
    ptq_only = load_tune_config("tune", ["space.quantization=[ptq]", "space.per_architecture={}"])
    assert "quantization" not in warm_start_points(ptq_only.space, known, trial_epochs=5, full_epochs=100)[0]
    grid = load_tune_config("tune", ["space.learning_rate=[0.001, 0.003, 0.01]"])
    assert for_trial_length(grid.space, "digit_recognizer_v6", KNOWN, 5, 100)["learning_rate"] == 0.01  # nearest
    # the experiment's points: moved by default, as known with warm_start_for_trial_length off, none without
    points = experiment_warm_start_points(tcfg)
    assert points[0]["batch_size"] == 16
    unmoved = experiment_warm_start_points(tcfg.model_copy(update={"warm_start_for_trial_length": False}))
    assert unmoved[0]["batch_size"] == 32 and unmoved[0]["learning_rate"] == 0.001
    assert experiment_warm_start_points(tcfg.model_copy(update={"warm_start": False})) == []


def test_warm_start_leaves_out_what_the_space_excludes():
    from digits.tuning.warm_start import warm_start_point

    tcfg = load_tune_config(
        "tune",
        [
            "space.optimizers=[adam, sgd]",
            "space.learning_rate={low: 0.002, high: 0.01}",
            "space.focal_gamma=[1.0, 2.0]",
            "space.quantization=[qat]",
            "space.architectures=[digit_recognizer_v6]",
            "space.per_architecture={}",
        ],
    )
    point = warm_start_point(tcfg.space, "digit_recognizer_v6", KNOWN)
    # nadam, lr 0.001 and gamma 0 are outside the space; without a known gamma neither alpha nor smoothing is
    # given; quantization and architecture have one value, so Optuna is not asked for them
    assert point == {"batch_size": 32, "dropout": 0.3}


def test_integer_choices_stay_integers_when_read_back_as_floats():
    tcfg = load_tune_config("tune")
    values = hyperparameters(
        {"architecture": "digit_recognizer_v4", "batch_size@digit_recognizer_v4": 64.0, "learning_rate": 0.001},
        tcfg.space,
    )
    assert values["batch_size"] == 64 and isinstance(values["batch_size"], int)


# ---------------------------------------------------------------------------------------------------------
# The Optuna study: float signal as intermediate values, INT8 as the objective, stopped trials pruned
# ---------------------------------------------------------------------------------------------------------
def study_searcher(tmp_path: Path, points: list[dict] | None = None):
    from digits.tuning.search import build_searcher

    tcfg = load_tune_config(
        "tune",
        [
            f"storage_path={tmp_path}",
            "name=s",
            "space.architectures=[digit_recognizer_v6]",
            "space.per_architecture={}",
        ],
    )
    tcfg.experiment_dir.mkdir(parents=True)
    return build_searcher(tcfg, points or []), tcfg


def test_the_study_is_optunas_own_with_finished_and_pruned_trials(tmp_path):
    from digits.tuning.search import load_study

    searcher, tcfg = study_searcher(tmp_path)
    searcher.set_search_properties(None, None, {})
    finished, stopped = searcher.suggest("a"), searcher.suggest("b")
    assert finished and stopped
    for epoch, value in ((1, 0.3), (2, 0.6)):
        searcher.on_trial_result("a", {"epoch": epoch, "best_val_accuracy": value, "trial_epochs": epoch})
    searcher.on_trial_complete("a", {"epoch": 2, "best_val_accuracy": 0.6, "int8_accuracy": 0.55, "trial_epochs": 2})
    searcher.on_trial_result("b", {"epoch": 1, "best_val_accuracy": 0.1, "trial_epochs": 1})
    searcher.on_trial_complete("b", {"epoch": 2, "best_val_accuracy": 0.1, "trial_epochs": 2})  # a rung stopped it
    study = load_study(tcfg.experiment_dir)
    states = {t.number: (t.state, t.value, dict(t.intermediate_values)) for t in study.trials}
    assert states[0] == (optuna.trial.TrialState.COMPLETE, 0.55, {1: 0.3, 2: 0.6})
    assert states[1][0] == optuna.trial.TrialState.PRUNED and states[1][2] == {1: 0.1, 2: 0.1}  # not finished
    from optuna.visualization import matplotlib as plots

    assert plots.plot_optimization_history(study) is not None
    assert plots.plot_intermediate_values(study) is not None


def test_a_study_in_a_bucket_is_read_into_memory_and_leaves_no_scratch_folder(tmp_path, monkeypatch):
    from digits.tuning.search import load_study

    searcher, tcfg = study_searcher(tmp_path)
    searcher.set_search_properties(None, None, {})
    assert searcher.suggest("a")
    searcher.on_trial_complete("a", {"epoch": 1, "best_val_accuracy": 0.4, "int8_accuracy": 0.35, "trial_epochs": 1})
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    study = load_study(tcfg.experiment_dir.resolve().as_uri())  # a file:// URI takes the bucket's path
    assert [(t.number, t.value) for t in study.trials] == [(0, 0.35)]
    assert list(scratch.iterdir()) == []
    with pytest.raises(UserError, match="optuna_study.log: not found"):
        load_study((tmp_path / "nothing-here").as_uri())


def test_warm_start_points_are_the_first_trials(tmp_path):
    point = {
        "optimizer": "nadam",
        "learning_rate": 0.001,
        "batch_size": 32,
        "focal_gamma": 0.0,
        "label_smoothing": 0.1,
        "dropout": 0.2,
        "quantization": "ptq",
    }
    searcher, tcfg = study_searcher(tmp_path, [point])
    config = searcher.suggest("a")
    assert hyperparameters(config, tcfg.space) == hyperparameters(point, tcfg.space)


# ---------------------------------------------------------------------------------------------------------
# Outputs: only finished trials ranked, integers kept, the table written as trials end
# ---------------------------------------------------------------------------------------------------------
V6 = {
    "architecture": "digit_recognizer_v6",
    "optimizer": "adam",
    "learning_rate": 0.001,
    "batch_size": 32,
    "focal_gamma": 0.0,
    "label_smoothing": 0.1,
    "dropout": 0.2,
    "quantization": "ptq",
}
V4 = {
    "architecture": "digit_recognizer_v4",
    "optimizer": "sgd",
    "learning_rate": 0.002,
    "batch_size@digit_recognizer_v4": 64,
    "focal_gamma": 0.0,
    "label_smoothing": 0.0,
    "dropout": 0.3,
    "quantization": "ptq",
}


def epoch_result(epoch: int, best: float, **final) -> dict:
    return {
        "epoch": epoch,
        "trial_epochs": epoch,
        "best_val_accuracy": best,
        "val_accuracy": best,
        "training_iteration": epoch,
        **final,
    }


def fake_experiment(exp_dir: Path) -> None:
    """Tune's files for three trials: v6 finished, v4 (per-architecture batch size) finished best, v7 stopped."""
    trials = {
        "aaa": (V6, [epoch_result(1, 0.5), epoch_result(2, 0.7, int8_accuracy=0.68, int8_size_bytes=27000)]),
        "bbb": (V4, [epoch_result(1, 0.6), epoch_result(2, 0.9, int8_accuracy=0.88, int8_size_bytes=90000)]),
        "ccc": ({**V6, "architecture": "digit_recognizer_v7"}, [epoch_result(1, 0.95)]),
    }
    for number, (trial_id, (params, results)) in enumerate(trials.items()):
        folder = exp_dir / f"run_trial_{trial_id}_{number}"
        folder.mkdir(parents=True)
        (folder / "params.json").write_text(json.dumps(params))
        (folder / "result.json").write_text("".join(json.dumps({**r, "trial_id": trial_id}) + "\n" for r in results))


def test_only_finished_trials_are_ranked_and_integers_stay_integers(tmp_path):
    from digits.tuning.outputs import write_outputs

    tcfg = load_tune_config("tune", [f"storage_path={tmp_path}", "name=e"])
    fake_experiment(tcfg.experiment_dir)
    outcome = write_outputs(tcfg, train_best=False)
    best = json.loads((tcfg.experiment_dir / "best_hyperparameters.json").read_text())
    assert outcome.best["trial_id"] == "bbb"  # ccc had the best float accuracy but never reached INT8
    assert best["best"]["hyperparameters"]["batch_size"] == 64
    assert isinstance(best["best"]["hyperparameters"]["batch_size"], int)
    assert best["best"]["epoch"] == 2 and best["best"]["int8_size_bytes"] == 90000
    assert (best["trials_finished"], best["trials_stopped_early"], best["trial_epochs_spent"]) == (2, 1, 5)
    csv = (tcfg.experiment_dir / "detailed_tuning_results.csv").read_text().splitlines()
    header = csv[0].split(",")
    rows = [dict(zip(header, line.split(","))) for line in csv[1:]]
    expected = [("1", "bbb", "finished"), ("2", "aaa", "finished"), ("", "ccc", "stopped")]
    assert [(r["rank"], r["trial_id"], r["outcome"]) for r in rows] == expected
    assert rows[0]["batch_size"] == "64" and rows[0]["epoch"] == "2" and rows[0]["int8_size_bytes"] == "90000"


def test_no_finished_trial_is_a_user_error(tmp_path):
    from digits.tuning.outputs import write_outputs

    tcfg = load_tune_config("tune", [f"storage_path={tmp_path}", "name=e"])
    folder = tcfg.experiment_dir / "run_trial_x_0"
    folder.mkdir(parents=True)
    (folder / "params.json").write_text(json.dumps(V6))
    (folder / "result.json").write_text(json.dumps(epoch_result(1, 0.4)) + "\n")
    with pytest.raises(UserError, match="no trial finished"):
        write_outputs(tcfg, train_best=False)


def fake_trial(trial_id: str, status: str, config: dict, result: dict):
    from types import SimpleNamespace

    return SimpleNamespace(trial_id=trial_id, status=status, config=config, last_result=result)


def test_the_results_table_holds_the_trials_that_ended_as_they_end(tmp_path):
    import pandas as pd

    from digits.tuning.progress import ResultsAsTrialsFinish, trial_line

    tcfg = load_tune_config("tune", [f"storage_path={tmp_path}", "name=e", "budget_epochs=30"])
    tcfg.experiment_dir.mkdir(parents=True)
    done = fake_trial("aaa", "TERMINATED", V6, epoch_result(2, 0.7, int8_accuracy=0.68, int8_size_bytes=27000))
    ending = fake_trial("bbb", "RUNNING", V4, epoch_result(3, 0.4))  # Tune calls back before marking it
    running = fake_trial("ccc", "RUNNING", V6, epoch_result(1, 0.2))
    trials = [done, ending, running]
    ResultsAsTrialsFinish(tcfg).on_trial_complete(0, trials, ending)
    table = pd.read_csv(tcfg.experiment_dir / "detailed_tuning_results.csv", dtype={"trial_id": str})
    assert list(table["trial_id"]) == ["aaa", "bbb"] and list(table["outcome"]) == ["finished", "stopped"]
    line = trial_line(ending, trials, tcfg)
    assert line.startswith("[2 ended | 6/30 trial-epochs] bbb stopped at epoch 3: best val 0.4000")
    assert "digit_recognizer_v4 sgd" in line and line.endswith("best INT8 0.6800")
    assert "finished: INT8 0.6800" in trial_line(done, trials, tcfg)


def test_a_bucket_experiment_keeps_its_uri_and_a_fixed_scratch_folder(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    tcfg = load_tune_config("tune", ["storage_path=s3://bucket/tune/", "name=t"]).with_absolute_paths()
    assert tcfg.storage_path == "s3://bucket/tune/" and tcfg.experiment_location == "s3://bucket/tune/t"
    assert tcfg.experiment_dir.parent == tmp_path and tcfg.experiment_dir == tcfg.with_absolute_paths().experiment_dir
    local = load_tune_config("tune", [f"storage_path={tmp_path}/runs", "name=t"]).with_absolute_paths()
    assert local.experiment_location == str(tmp_path / "runs" / "t") and local.experiment_dir == tmp_path / "runs" / "t"


def test_outputs_of_an_experiment_in_a_bucket_are_read_from_and_written_to_it(s3_bucket, tmp_path, monkeypatch):
    """Without Ray: Tune's trial records in the bucket are read, the outputs uploaded as plain files; a resume pulls
    the driver's files back into the scratch folder (the full run is tests/digits/integration/test_tune_s3.py)."""
    from digits.tuning.mirror import open_experiment
    from digits.tuning.outputs import write_outputs
    from experiments import storage

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "scratch"))
    tcfg = load_tune_config("tune", [f"storage_path={s3_bucket}/tune", "name=e"]).with_absolute_paths()
    location = tcfg.experiment_location
    fake_experiment(tmp_path / "made")
    for name in storage.list_files(tmp_path / "made"):
        storage.upload_file(tmp_path / "made" / name, storage.join(location, name))
    storage.write_bytes(storage.join(location, "run_trial_aaa_0", "checkpoint_000000", "model.keras"), b"weights")
    mirror = open_experiment(tcfg, resume=False)
    (tcfg.experiment_dir / "unique_results.json").write_text("{}")
    outcome = write_outputs(tcfg, train_best=False)
    mirror.close()
    assert outcome.best["trial_id"] == "bbb" and outcome.location == location
    assert storage.join(location, "best_config.yaml") in outcome.files
    best = json.loads(storage.read_bytes(storage.join(location, "best_hyperparameters.json")))
    assert best["best"]["int8_size_bytes"] == 90000
    best_config = storage.read_bytes(storage.join(location, "best_config.yaml")).decode()
    assert f"export_dir: {location}/best_model" in best_config
    table = storage.read_bytes(storage.join(location, "detailed_tuning_results.csv")).decode().splitlines()
    assert len(table) == 4 and not tcfg.experiment_dir.exists()

    open_experiment(tcfg, resume=True)  # the driver's files come back; Tune's records and checkpoints do not
    assert sorted(p.name for p in tcfg.experiment_dir.iterdir()) == [
        "detailed_tuning_results.csv",
        "detailed_tuning_results.parquet",
        "unique_results.json",
    ]
