"""The multi-frame generator (`model.generator_frames`): a track's frames fused per pixel into one SR image."""

from __future__ import annotations

import pytest
import torch

from lpasrn.data.plates import LR_FRAMES, PlateSRDataset, frame_order, frame_stacks, generator_input, scan_tracks
from lpasrn.models.frame_fusion import FrameFusion
from lpasrn.models.swinir import SwinIRGenerator

SMALL = dict(scale=2, embed_dim=16, depths=[1], num_heads=2, window_size=8, mlp_ratio=2.0)


def _generator(multi_frame: bool, pyramid: bool = False) -> SwinIRGenerator:
    torch.manual_seed(0)
    return SwinIRGenerator(**SMALL, use_pyramid_attention=pyramid, multi_frame=multi_frame).eval()


def test_frames_are_stacked_reference_first_then_the_next_ones_cycling():
    assert frame_order(5, 0, 3) == [0, 1, 2]
    assert frame_order(5, 4, 3) == [4, 0, 1]
    assert frame_order(2, 1, 5) == [1, 0, 1, 0, 1]  # a short track repeats its frames


def test_frame_stacks_make_every_frame_the_reference_once():
    frames = torch.arange(4).float().view(4, 1, 1, 1).expand(4, 3, 2, 2)
    stacks = frame_stacks(frames, 3)
    assert stacks.shape == (4, 3, 3, 2, 2)
    assert stacks[:, :, 0, 0, 0].tolist() == [[0, 1, 2], [1, 2, 3], [2, 3, 0], [3, 0, 1]]


def test_a_fresh_fusion_averages_the_frames():
    torch.testing.assert_close(FrameFusion(8)(torch.randn(2, 4, 8, 5, 7)), torch.full((2, 4, 1, 5, 7), 0.25))


def test_fusion_weights_are_a_distribution_over_the_frames_at_every_pixel():
    fusion = FrameFusion(8)
    torch.nn.init.normal_(fusion.score[-1].weight)  # as after training: frames scored differently
    weights = fusion(torch.randn(2, 4, 8, 5, 7))
    assert weights.shape == (2, 4, 1, 5, 7)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2, 1, 5, 7))
    assert (weights > 0).all() and weights.std() > 0.01


@torch.no_grad()
def test_one_frame_through_a_multi_frame_generator_is_what_the_single_frame_generator_computes():
    single, multi = _generator(False, pyramid=True), _generator(True, pyramid=True)
    fusion = {key: value for key, value in multi.state_dict().items() if key.startswith("frame_fusion.")}
    multi.load_state_dict(single.state_dict() | fusion)
    lr = torch.rand(2, 3, 16, 48)
    expected = single(lr, ["Brazilian", "Mercosur"])
    torch.testing.assert_close(multi(lr, ["Brazilian", "Mercosur"]), expected)
    torch.testing.assert_close(multi(lr.unsqueeze(1), ["Brazilian", "Mercosur"]), expected)


@torch.no_grad()
def test_the_output_does_not_depend_on_the_order_of_the_other_frames():
    generator = _generator(True)
    torch.nn.init.normal_(generator.frame_fusion.score[-1].weight)
    frames = torch.rand(1, 4, 3, 16, 48)
    shuffled = frames[:, [0, 3, 1, 2]]
    torch.testing.assert_close(generator(frames), generator(shuffled), atol=1e-5, rtol=1e-5)
    assert generator(frames).shape == (1, 3, 32, 96)


@torch.no_grad()
def test_the_same_frame_k_times_gives_the_one_frame_result():
    generator = _generator(True)
    lr = torch.rand(2, 3, 16, 48)
    torch.testing.assert_close(generator(lr.unsqueeze(1).expand(2, 4, 3, 16, 48)), generator(lr), atol=1e-5, rtol=1e-5)


def test_the_fusion_learns_from_the_loss():
    generator = _generator(True).train()
    generator(torch.rand(2, 3, 3, 16, 48)).square().mean().backward()
    assert generator.frame_fusion.score[-1].weight.grad.abs().sum() > 0


def test_a_single_frame_generator_refuses_stacked_frames():
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        _generator(False)(torch.rand(1, 3, 3, 16, 48))


def test_samples_stack_their_frame_with_the_tracks_next_ones(plate_root):
    tracks = scan_tracks(plate_root).tracks[:1]
    stacked, plain = PlateSRDataset(tracks, (16, 48), 2, generator_frames=3), PlateSRDataset(tracks, (16, 48), 2)
    sample = stacked[4]  # the track's last frame: its neighbours are frames 1 and 2
    assert sample[LR_FRAMES].shape == (3, 3, 16, 48)
    torch.testing.assert_close(sample[LR_FRAMES][0], sample["lr"])
    torch.testing.assert_close(sample[LR_FRAMES][1], plain[0]["lr"])
    torch.testing.assert_close(sample[LR_FRAMES][2], plain[1]["lr"])
    torch.testing.assert_close(sample["hr"], plain[4]["hr"])
    assert LR_FRAMES not in plain[0]
    torch.testing.assert_close(generator_input(sample), sample[LR_FRAMES])
    torch.testing.assert_close(generator_input(plain[0]), plain[0]["lr"])


def test_a_single_frame_generators_weights_seed_a_multi_frame_one_with_a_fresh_fusion():
    single, multi = _generator(False), _generator(True)
    state = multi.completed_state(single.state_dict())
    multi.load_state_dict(state)
    assert multi.completed_state(state) is state  # a multi-frame state is taken as it is
    torch.testing.assert_close(state["conv_first.weight"], single.state_dict()["conv_first.weight"])
