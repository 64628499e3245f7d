"""Character Pyramid Attention: shape preserving, differentiable, layout-aware, free when off, near identity at init."""

from __future__ import annotations

import pytest
import torch

from lpasrn.models.pyramid_attention import STROKE_KERNELS, CharacterPyramidAttention
from lpasrn.models.swinir import SwinIRGenerator

CHANNELS = 16


def pyramid(layout: str = "brazilian") -> CharacterPyramidAttention:
    torch.manual_seed(0)
    return CharacterPyramidAttention(CHANNELS, num_heads=2, layout=layout)


def features(batch: int = 2, height: int = 16, width: int = 48) -> torch.Tensor:
    return torch.randn(batch, CHANNELS, height, width, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("size", [(16, 48), (17, 50), (5, 7)])
def test_output_keeps_the_input_shape(size: tuple[int, int]) -> None:
    with torch.no_grad():
        assert pyramid()(features(2, *size)).shape == (2, CHANNELS, *size)


def test_gradients_reach_the_input_and_every_parameter() -> None:
    module = pyramid()
    x = features().requires_grad_()
    module(x).square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    without_gradient = [
        name for name, param in module.named_parameters() if param.grad is None or param.grad.abs().sum() == 0
    ]
    assert without_gradient == []


def test_is_near_identity_at_initialisation() -> None:
    x = features()
    with torch.no_grad():
        change = (pyramid()(x) - x).abs().max() / x.abs().max()
    assert 0 < change < 1e-2


def test_layouts_give_different_outputs() -> None:
    module = pyramid()
    torch.nn.init.ones_(module.fuse_scale)  # make the branch's contribution visible
    x = features()
    with torch.no_grad():
        brazilian = module(x, ["Brazilian", "Brazilian"])
        mercosur = module(x, ["Mercosur", "Mercosur"])
    assert not torch.allclose(brazilian, mercosur, atol=1e-4)


def test_configured_layout_is_the_default_and_layouts_apply_per_image() -> None:
    module = pyramid(layout="mercosur")
    torch.nn.init.ones_(module.fuse_scale)
    x = features()
    with torch.no_grad():
        torch.testing.assert_close(module(x), module(x, ["Mercosur", "Mercosur"]))
        mixed = module(x, ["Brazilian", "Mercosur"])
        torch.testing.assert_close(mixed[:1], module(x[:1], ["Brazilian"]))
        torch.testing.assert_close(mixed[1:], module(x[1:], ["Mercosur"]))


def test_layout_count_must_match_the_batch() -> None:
    with pytest.raises(ValueError, match="2 layouts for a batch of 3"):
        pyramid()(features(batch=3), ["Brazilian", "Mercosur"])


def test_stroke_filters_start_as_directional_edge_kernels() -> None:
    weights = pyramid().strokes.filters.weight.view(CHANNELS, len(STROKE_KERNELS), 3, 3)
    assert torch.equal(weights[3], STROKE_KERNELS)


def test_disabled_costs_no_parameters() -> None:
    def generator(enabled: bool) -> SwinIRGenerator:
        return SwinIRGenerator(
            scale=2,
            embed_dim=CHANNELS,
            depths=(2,),
            num_heads=2,
            window_size=4,
            mlp_ratio=2.0,
            num_feat=8,
            use_pyramid_attention=enabled,
        )

    enabled, disabled = generator(True), generator(False)
    module_parameters = sum(param.numel() for param in enabled.pyramid_attention.parameters())
    assert disabled.pyramid_attention is None
    assert not [key for key in disabled.state_dict() if "pyramid" in key]
    assert sum(p.numel() for p in enabled.parameters()) - sum(p.numel() for p in disabled.parameters()) == (
        module_parameters
    )
