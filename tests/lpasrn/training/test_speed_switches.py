"""`train.bf16`, `train.channels_last` and `train.compile` take effect where the engine builds and runs models."""

from __future__ import annotations

import pytest
import torch

from lpasrn.config import TrainConfig, load_lpasrn_config
from lpasrn.model_factory import build_generator, build_ocr
from lpasrn.training.session import LocalSession
from lpasrn.training.speed import apply_model_switches, autocast, compile_targets, to_device
from lpasrn.training.stages import stage_table
from lpasrn.training.system import PlateSRSystem
from tests.conftest import tiny_overrides

CPU = torch.device("cpu")


def _system(overrides=()):
    cfg = load_lpasrn_config("lp_asrn_tiny", ["model.swinir_embed_dim=16", "ocr.model_type=parseq_micro", *overrides])
    generator, ocr = build_generator(cfg.model, cfg.data.scale), build_ocr(cfg.ocr)
    return PlateSRSystem(generator, ocr, stage_table(cfg)[2], cfg.loss), cfg


def test_the_switches_are_off_by_default_and_typed():
    train = TrainConfig()
    assert train.bf16 is None and train.channels_last is False and train.compile is False
    with pytest.raises(ValueError):
        TrainConfig(compile="sometimes")


@pytest.mark.parametrize(("bf16", "on_cpu"), [(None, False), (False, False), (True, True)])
def test_bf16_autocast_runs_on_the_cpu_only_when_asked_for(bf16, on_cpu):
    with autocast(CPU, bf16):
        assert torch.is_autocast_enabled("cpu") is on_cpu
        out = torch.nn.Linear(4, 4)(torch.ones(2, 4))
    assert out.dtype == (torch.bfloat16 if on_cpu else torch.float32)


def test_bf16_by_default_on_a_gpu_device():
    from lpasrn.training.speed import bf16_enabled

    assert bf16_enabled(torch.device("cuda"), None) and not bf16_enabled(torch.device("cuda"), False)


def test_channels_last_changes_the_memory_format_of_convolutions_and_batches():
    system, cfg = _system(["train.channels_last=true"])
    apply_model_switches(system, cfg.train)
    weight = system.generator.conv_first.weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    batch = to_device(torch.rand(2, 3, 16, 48), CPU, channels_last=True)
    assert batch.is_contiguous(memory_format=torch.channels_last)
    assert system.generator(batch).shape == (2, 3, 32, 96)


def test_compile_wraps_the_rstbs_and_the_ocr_encoder_in_place():
    system, cfg = _system(["train.compile=true"])
    names = set(system.state_dict())
    apply_model_switches(system, cfg.train)
    targets = compile_targets(system)
    assert len(targets) == len(system.generator.layers) + 1 and targets[-1] is system.ocr.encoder
    assert all(module._compiled_call_impl is not None for module in targets)  # compiled on first call
    assert set(system.state_dict()) == names, "checkpoints keep their parameter names"


def test_without_switches_nothing_is_compiled_or_reordered():
    system, cfg = _system()
    apply_model_switches(system, cfg.train)
    assert all(module._compiled_call_impl is None for module in compile_targets(system))
    assert system.generator.conv_first.weight.is_contiguous()


def test_the_stage_trainer_applies_the_switches(synth_plates, tmp_path):
    from lpasrn.training.engine import StageTrainer

    cfg = load_lpasrn_config(
        "lp_asrn_tiny",
        tiny_overrides(synth_plates, tmp_path, "switches") + ["train.channels_last=true", "train.compile=true"],
    )
    stage = stage_table(cfg)[1]
    trainer = StageTrainer(cfg, stage, tmp_path / "stage1", LocalSession(tmp_path / "stage1", show_progress=False))
    assert trainer.system.generator.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
    assert all(module._compiled_call_impl is not None for module in compile_targets(trainer.system))
