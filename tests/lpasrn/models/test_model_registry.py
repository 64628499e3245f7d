"""The model registry: every name an experiment can use builds, and the config accepts exactly the OCRs it holds."""

from __future__ import annotations

import typing

import pytest
import torch

from lpasrn.config import OCRConfig
from lpasrn.models import SwinIRGenerator, create_model, list_models


def test_generators_and_ocrs_are_listed_by_kind() -> None:
    assert list_models("generator") == ["swinir_cpu", "swinir_lightweight", "swinir_maximum", "swinir_tiny"]
    assert list_models("ocr") == ["parseq", "parseq_micro", "parseq_tiny", "slot_cnn", "slot_cnn_wide"]
    assert list_models() == sorted(list_models("generator") + list_models("ocr"))


def test_the_ocr_config_accepts_exactly_the_registered_ocrs() -> None:
    accepted = typing.get_args(OCRConfig.model_fields["model_type"].annotation)
    assert sorted(accepted) == list_models("ocr")


@pytest.mark.parametrize("name", ["swinir_tiny", "swinir_cpu"])
def test_a_generator_takes_its_scale_and_overrides(name: str) -> None:
    generator = create_model(name, scale=3, multi_frame=True)
    assert isinstance(generator, SwinIRGenerator) and generator.frame_fusion is not None
    with torch.no_grad():
        assert generator(torch.rand(1, 2, 3, 8, 12)).shape == (1, 3, 24, 36)


def test_an_unknown_name_lists_the_registered_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'swinir_huge' \(expected one of \['parseq'"):
        create_model("swinir_huge")
