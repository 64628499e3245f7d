"""One training step of a preset as the engine runs it, for the benches that time it or weigh it (`gpu.py`,
`memory.py`): the preset's generator and OCR in a `PlateSRSystem` for one stage, the `train:` switches applied by
`lpasrn.training.speed` (what a run with those switches gets), AdamW, random plates of the preset's sizes."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from lpasrn.config import LpasrnConfig, load_lpasrn_config  # noqa: E402
from lpasrn.data.charset import LAYOUT_PATTERNS, letter_slot_mask  # noqa: E402
from lpasrn.model_factory import build_generator, build_ocr  # noqa: E402
from lpasrn.training.speed import apply_model_switches, autocast, to_device  # noqa: E402
from lpasrn.training.stages import stage_table  # noqa: E402
from lpasrn.training.system import PlateSRSystem  # noqa: E402

PRESETS = {"tiny": "lp_asrn_tiny", "light": "lp_asrn_light", "max": "lp_asrn"}
LETTERS, DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789"


def random_plates(count: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Texts that fit their layouts (the layout penalty sees real plates), and the layouts."""
    rng = random.Random(seed)
    layouts = [rng.choice(sorted(LAYOUT_PATTERNS)) for _ in range(count)]
    texts = [
        "".join(rng.choice(LETTERS if letter else DIGITS) for letter in letter_slot_mask(layout)) for layout in layouts
    ]
    return texts, layouts


def preset_config(preset: str, overrides: list[str] = ()) -> LpasrnConfig:
    return load_lpasrn_config(PRESETS[preset], list(overrides))


def training_step(
    cfg: LpasrnConfig,
    stage: int,
    batch: int,
    device: torch.device,
    wrap: Callable[[torch.nn.Module], torch.nn.Module] = lambda model: model,
) -> Callable[[], None]:
    """A closure running one optimiser step of `stage` on a fixed random batch (`wrap`: e.g. DDP)."""
    torch.manual_seed(0)
    system = PlateSRSystem(
        build_generator(cfg.model, cfg.data.scale),
        build_ocr(cfg.ocr, pretrained=False),
        stage_table(cfg)[stage],
        cfg.loss,
    )
    apply_model_switches(system, cfg.train)
    params = system.configure_trainable()
    model = wrap(system.to(device).train())
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    (height, width), scale = cfg.data.lr_size, cfg.data.scale
    lr = to_device(torch.rand(batch, 3, height, width), device, cfg.train.channels_last)
    hr = to_device(torch.rand(batch, 3, height * scale, width * scale), device, cfg.train.channels_last)
    texts, layouts = random_plates(batch)

    def step() -> None:
        with autocast(device, cfg.train.bf16):
            loss = model(lr, hr, texts, layouts)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step
