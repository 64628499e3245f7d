"""SwinIR generator: shapes for any size, pinned preset sizes, cached shift masks, reference-compatible checkpoints."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lpasrn.models import swinir
from lpasrn.models.checkpoints import CheckpointMismatchError
from lpasrn.models.swinir import GENERATOR_PRESETS, SwinIRGenerator, SwinIRPreset, load_generator_weights

# Computed once from the presets and pinned: a change here changes every checkpoint.
MAXIMUM_PARAMETERS = 10_359_161
LIGHTWEIGHT_PARAMETERS = 1_528_595
CPU_PARAMETERS = 254_257
TINY_PARAMETERS = 202_197


def tiny_generator(scale: int = 2, **overrides) -> SwinIRGenerator:
    torch.manual_seed(0)
    settings = (
        dict(
            scale=scale,
            embed_dim=16,
            depths=(2, 2),
            num_heads=2,
            window_size=4,
            mlp_ratio=2.0,
            num_feat=8,
            use_pyramid_attention=True,
        )
        | overrides
    )
    return SwinIRGenerator(**settings).eval()


def lr_batch(height: int, width: int, batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("lr_size", [(16, 48), (17, 50), (34, 62)])
def test_output_is_the_input_size_times_the_scale_for_any_size(lr_size: tuple[int, int]) -> None:
    generator = tiny_generator(window_size=6)
    with torch.no_grad():
        output = generator(lr_batch(*lr_size))
    assert output.shape == (2, 3, lr_size[0] * 2, lr_size[1] * 2)
    assert torch.isfinite(output).all()


def test_scale_four_uses_two_pixel_shuffle_steps() -> None:
    generator = tiny_generator(scale=4)
    with torch.no_grad():
        output = generator(lr_batch(17, 50, batch=1))
    assert output.shape == (1, 3, 68, 200)
    assert [name for name, _ in generator.upsample.named_children()] == ["0", "1", "2", "3"]


def test_images_smaller_than_the_window_still_work() -> None:
    with torch.no_grad():
        output = tiny_generator(window_size=8)(lr_batch(5, 7, batch=1))
    assert output.shape == (1, 3, 10, 14)


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("swinir_maximum", MAXIMUM_PARAMETERS),
        ("swinir_lightweight", LIGHTWEIGHT_PARAMETERS),
        ("swinir_cpu", CPU_PARAMETERS),
        ("swinir_tiny", TINY_PARAMETERS),
    ],
)
def test_preset_parameter_counts_are_pinned(preset: str, expected: int) -> None:
    with torch.no_grad():
        generator = GENERATOR_PRESETS[preset].build(scale=2)
    assert sum(param.numel() for param in generator.parameters()) == expected


def test_presets_match_the_seed_configurations() -> None:
    assert GENERATOR_PRESETS["swinir_maximum"] == SwinIRPreset(
        embed_dim=144,
        num_rstb=8,
        num_blocks_per_rstb=3,
        num_heads=8,
        window_size=6,
        mlp_ratio=6.0,
        use_pyramid_attention=True,
    )
    assert GENERATOR_PRESETS["swinir_lightweight"] == SwinIRPreset(
        embed_dim=96,
        num_rstb=4,
        num_blocks_per_rstb=2,
        num_heads=6,
        window_size=8,
        mlp_ratio=4.0,
        use_pyramid_attention=False,
    )


def test_a_preset_builds_its_generator_with_the_overrides_given() -> None:
    generator = GENERATOR_PRESETS["swinir_lightweight"].build(scale=4, use_pyramid_attention=True)
    assert generator.describe() == "x4, embed 96, 4 RSTB x 2 blocks, 6 heads, window 8, MLP 4, CPA on"


def test_shift_masks_are_built_once_per_padded_size(monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[tuple[int, int]] = []
    build = swinir.shifted_window_mask

    def counting_build(height, width, *args, **kwargs):
        builds.append((height, width))
        return build(height, width, *args, **kwargs)

    monkeypatch.setattr(swinir, "shifted_window_mask", counting_build)
    generator = tiny_generator(window_size=4)
    with torch.no_grad():
        generator(lr_batch(16, 48))
        generator(lr_batch(16, 48))
        generator(lr_batch(15, 46))  # pads to the same 16x48: reuses the mask
        generator(lr_batch(17, 50))  # pads to 20x52: a new mask
    assert builds == [(16, 48), (20, 52)]


def test_masks_and_derived_indices_stay_out_of_the_state_dict() -> None:
    generator = tiny_generator()
    with torch.no_grad():
        generator(lr_batch(16, 48))
    keys = generator.state_dict().keys()
    assert not [key for key in keys if key.endswith(("relative_position_index", "attn_mask", "mean"))]


def test_state_dict_uses_the_reference_swinir_names() -> None:
    keys = set(tiny_generator(use_pyramid_attention=False).state_dict())
    block = "layers.1.residual_group.blocks.1."
    expected = {
        "conv_first.weight",
        "patch_embed.norm.weight",
        f"{block}norm1.weight",
        f"{block}attn.qkv.weight",
        f"{block}attn.proj.weight",
        f"{block}attn.relative_position_bias_table",
        f"{block}norm2.bias",
        f"{block}mlp.fc1.weight",
        f"{block}mlp.fc2.bias",
        "layers.0.conv.weight",
        "norm.weight",
        "conv_after_body.weight",
        "conv_before_upsample.0.weight",
        "upsample.0.weight",
        "conv_last.weight",
    }
    assert expected <= keys


def test_state_dict_round_trip_gives_identical_outputs(tmp_path) -> None:
    source = tiny_generator()
    path = tmp_path / "generator.pt"
    torch.save(source.state_dict(), path)
    torch.manual_seed(123)
    restored = SwinIRGenerator(
        scale=2,
        embed_dim=16,
        depths=(2, 2),
        num_heads=2,
        window_size=4,
        mlp_ratio=2.0,
        num_feat=8,
        use_pyramid_attention=True,
    ).eval()
    restored.load_state_dict(torch.load(path, weights_only=True))
    images = lr_batch(17, 50)
    with torch.no_grad():
        assert torch.equal(source(images), restored(images))


def test_reference_style_checkpoint_with_saved_buffers_loads(tmp_path) -> None:
    source = tiny_generator(use_pyramid_attention=False)
    state = dict(source.state_dict())
    # The reference SwinIR saves these buffers (sized for its training patch) under a KAIR `params` key.
    state["layers.0.residual_group.blocks.0.attn.relative_position_index"] = torch.zeros(16, 16, dtype=torch.long)
    state["layers.0.residual_group.blocks.1.attn_mask"] = torch.zeros(4, 16, 16)
    path = tmp_path / "reference_x2.pth"
    torch.save({"params": state}, path)
    restored = tiny_generator(use_pyramid_attention=False)
    torch.nn.init.zeros_(restored.conv_first.weight)
    load_generator_weights(restored, str(path))
    assert torch.equal(restored.conv_first.weight, source.conv_first.weight)


def test_mismatched_checkpoint_error_names_the_keys_and_both_shapes(tmp_path) -> None:
    path = tmp_path / "other.pt"
    torch.save(tiny_generator(embed_dim=24, use_pyramid_attention=False).state_dict(), path)
    with pytest.raises(CheckpointMismatchError) as caught:
        load_generator_weights(tiny_generator(), str(path))
    message = str(caught.value)
    assert "conv_first.weight (checkpoint (24, 3, 3, 3) vs model (16, 3, 3, 3))" in message
    assert "missing keys: pyramid_attention." in message
    assert "\n" not in message


def test_bicubic_skip_makes_a_zero_residual_the_bicubic_upscale() -> None:
    generator = tiny_generator()
    torch.nn.init.zeros_(generator.conv_last.weight)
    torch.nn.init.zeros_(generator.conv_last.bias)
    images = lr_batch(16, 48)
    with torch.no_grad():
        output = generator(images)
    expected = F.interpolate(images, scale_factor=2, mode="bicubic", align_corners=False)
    torch.testing.assert_close(output, expected)


def test_without_skip_a_zero_residual_is_the_mean_like_the_reference() -> None:
    generator = tiny_generator(bicubic_skip=False, use_pyramid_attention=False, img_range=255.0)
    torch.nn.init.zeros_(generator.conv_last.weight)
    torch.nn.init.zeros_(generator.conv_last.bias)
    with torch.no_grad():
        output = generator(lr_batch(8, 8, batch=1))
    torch.testing.assert_close(output, generator.mean.expand_as(output))


def test_gradients_reach_every_parameter() -> None:
    generator = tiny_generator().train()
    generator(lr_batch(10, 18)).square().mean().backward()
    without_gradient = [
        name for name, param in generator.named_parameters() if param.grad is None or not param.grad.abs().sum() > 0
    ]
    assert without_gradient == []


def reference_order_output(generator: SwinIRGenerator, lr: torch.Tensor) -> torch.Tensor:
    """The reference SwinIR's forward, step by step: pad the image, run every layer, crop only the final image."""
    height, width = lr.shape[-2:]
    window = generator.window_size
    padded = F.pad(lr, (0, -width % window, 0, -height % window), mode="reflect")
    x = (padded - generator.mean) * generator.img_range
    x = generator.conv_first(x)
    x = generator.conv_after_body(generator.forward_features(x)) + x
    x = generator.conv_last(generator.upsample(generator.conv_before_upsample(x)))
    x = x / generator.img_range + generator.mean
    return x[..., : height * generator.scale, : width * generator.scale]


@pytest.mark.parametrize(("lr_size", "window_size"), [((16, 48), 6), ((17, 50), 8)])
def test_padded_inputs_give_the_reference_swinir_output(lr_size: tuple[int, int], window_size: int) -> None:
    generator = tiny_generator(
        window_size=window_size, bicubic_skip=False, use_pyramid_attention=False, img_range=255.0
    )
    images = lr_batch(*lr_size)
    with torch.no_grad():
        torch.testing.assert_close(generator(images), reference_order_output(generator, images))


def test_bicubic_skip_adds_the_upscaled_input_to_the_reference_order_residual() -> None:
    generator = tiny_generator(window_size=6, use_pyramid_attention=False)
    images = lr_batch(16, 48)
    with torch.no_grad():
        residual = reference_order_output(generator, images) - generator.mean
        expected = residual + F.interpolate(images, scale_factor=2, mode="bicubic", align_corners=False)
        torch.testing.assert_close(generator(images), expected)


def test_pyramid_attention_sees_only_the_image_region_of_the_padded_map() -> None:
    generator = tiny_generator(window_size=6)
    seen: list[tuple[int, int]] = []
    generator.pyramid_attention.register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape[-2:])))
    with torch.no_grad():
        output = generator(lr_batch(16, 50))
    assert seen == [(16, 50)]
    assert output.shape[-2:] == (32, 100)
