"""SwinIR generator: shifted-window transformer body, pixel-shuffle up-sampler, bicubic global skip.

Parameter names follow the reference SwinIR (Liang et al., 2021, `JingyunLiang/SwinIR`) so its published
weights load where the configuration matches. Unlike the reference, any input size works: the image is
reflect-padded to a multiple of the window, the whole network runs on the padded map and only the output image is
cropped (the reference's order), and the shifted-window masks are built once per padded size.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import Tensor, nn

from lpasrn.models.checkpoints import load_checked_state_dict, read_checkpoint, resolve_pretrained
from lpasrn.models.frame_fusion import FrameFusion
from lpasrn.models.pyramid_attention import CharacterPyramidAttention

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)
SHIFT_MASK_VALUE = -100.0  # the reference's value; exp(-100) is 0 in every float format used here
# Buffers the reference saves in its state dict; both are derived from the configuration, so they are skipped.
REFERENCE_DERIVED_BUFFERS = (".relative_position_index", ".attn_mask")


@dataclass(frozen=True)
class SwinIRPreset:
    """The hyper-parameters that make a generator what it is; `build` keeps SwinIRGenerator's defaults for the rest
    (scale, pyramid layout, frames), which a run chooses, not the preset."""

    embed_dim: int
    num_rstb: int
    num_blocks_per_rstb: int
    num_heads: int
    window_size: int
    mlp_ratio: float
    use_pyramid_attention: bool

    def build(self, scale: int = 2, **overrides: Any) -> SwinIRGenerator:
        settings: dict[str, Any] = dict(
            embed_dim=self.embed_dim,
            depths=(self.num_blocks_per_rstb,) * self.num_rstb,
            num_heads=self.num_heads,
            window_size=self.window_size,
            mlp_ratio=self.mlp_ratio,
            use_pyramid_attention=self.use_pyramid_attention,
        )
        return SwinIRGenerator(scale=scale, **(settings | overrides))


# The seed's two published configurations (`maximum` is also ModelConfig's default) and the CPU experiments' two.
GENERATOR_PRESETS: dict[str, SwinIRPreset] = {
    "swinir_maximum": SwinIRPreset(
        embed_dim=144,
        num_rstb=8,
        num_blocks_per_rstb=3,
        num_heads=8,
        window_size=6,
        mlp_ratio=6.0,
        use_pyramid_attention=True,
    ),
    "swinir_lightweight": SwinIRPreset(
        embed_dim=96,
        num_rstb=4,
        num_blocks_per_rstb=2,
        num_heads=6,
        window_size=8,
        mlp_ratio=4.0,
        use_pyramid_attention=False,
    ),
    # lp_asrn_cpu.yaml: small enough to train the five stages on two CPU cores in minutes.
    "swinir_cpu": SwinIRPreset(
        embed_dim=32,
        num_rstb=2,
        num_blocks_per_rstb=2,
        num_heads=2,
        window_size=8,
        mlp_ratio=2.0,
        use_pyramid_attention=True,
    ),
    # lp_asrn_tiny.yaml: the smallest generator that still learns, for tests and `make demo`.
    "swinir_tiny": SwinIRPreset(
        embed_dim=24,
        num_rstb=2,
        num_blocks_per_rstb=1,
        num_heads=2,
        window_size=4,
        mlp_ratio=2.0,
        use_pyramid_attention=True,
    ),
}


def window_partition(x: Tensor, window_size: int) -> Tensor:
    """[B, H, W, C] -> [B, num_windows, window_size**2, C]; H and W must be multiples of the window."""
    batch, height, width, channels = x.shape
    x = x.view(batch, height // window_size, window_size, width // window_size, window_size, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(batch, -1, window_size * window_size, channels)


def window_merge(windows: Tensor, window_size: int, height: int, width: int) -> Tensor:
    """Inverse of `window_partition`: [B, num_windows, window_size**2, C] -> [B, H, W, C]."""
    batch, _, _, channels = windows.shape
    x = windows.view(batch, height // window_size, width // window_size, window_size, window_size, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(batch, height, width, channels)


def relative_position_index(window_size: int) -> Tensor:
    """[N, N] index into the bias table for every (query, key) pair of a window, N = window_size**2."""
    rows, cols = torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
    coords = torch.stack([rows.flatten(), cols.flatten()])  # [2, N]
    offsets = (coords[:, :, None] - coords[:, None, :]) + (window_size - 1)  # [2, N, N], shifted to start at 0
    return offsets[0] * (2 * window_size - 1) + offsets[1]


def shifted_window_mask(height: int, width: int, window_size: int, shift_size: int, device: torch.device) -> Tensor:
    """Additive mask [num_windows, 1, N, N] for SW-MSA.

    After the cyclic shift a window at the border holds pixels from opposite image edges; the mask keeps
    those regions from attending to each other.
    """
    regions = torch.zeros(1, height, width, 1, device=device)
    bands = (slice(0, -window_size), slice(-window_size, -shift_size), slice(-shift_size, None))
    for label, (rows, cols) in enumerate(itertools.product(bands, bands)):
        regions[:, rows, cols, :] = label
    labels = window_partition(regions, window_size)[0, :, :, 0]  # [num_windows, N]
    crosses_region = labels[:, None, :] != labels[:, :, None]
    return (crosses_region.float() * SHIFT_MASK_VALUE).unsqueeze(1)


def reflect_pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Pad bottom/right so H and W are multiples of `multiple` (reflect; replicate when the image is smaller)."""
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not pad_h and not pad_w:
        return x
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with a learned bias per relative offset (W-MSA)."""

    relative_position_index: Tensor  # a buffer, registered in __init__

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        # Recomputed from the window size, so it stays out of checkpoints (the reference saves it).
        self.register_buffer("relative_position_index", relative_position_index(window_size), persistent=False)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        trunc_normal_(self.relative_position_bias_table, std=0.02)

    def relative_position_bias(self) -> Tensor:
        tokens = self.window_size**2
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(tokens, tokens, self.num_heads).permute(2, 0, 1)  # [heads, N, N]

    def forward(self, windows: Tensor, mask: Tensor | None) -> Tensor:
        """windows: [B, num_windows, N, C]; mask: [num_windows, 1, N, N] or None.

        Explicit products over a 4-D batch of windows rather than `scaled_dot_product_attention`: with an additive
        mask on windows of 36-64 tokens, PyTorch's CPU dispatch takes its unfused path plus a safe-softmax pass, and
        measured 5-9% slower per lightweight training step (`bench/generator_vs_reference.py`).
        """
        batch, num_windows, tokens, channels = windows.shape
        head_dim = channels // self.num_heads
        qkv = self.qkv(windows).view(batch * num_windows, tokens, 3, self.num_heads, head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B * num_windows, heads, N, head_dim]
        scores = (query * head_dim**-0.5) @ key.transpose(-2, -1)
        bias = self.relative_position_bias().to(scores.dtype)  # under autocast, keep bf16 scores bf16
        if mask is None:
            scores = scores + bias
        else:  # the mask differs per window position, so it broadcasts over the batch only
            windowed = scores.view(batch, num_windows, self.num_heads, tokens, tokens) + (bias + mask.to(bias.dtype))
            scores = windowed.view(batch * num_windows, self.num_heads, tokens, tokens)
        out = scores.softmax(dim=-1) @ value
        return self.proj(out.transpose(1, 2).reshape(batch, num_windows, tokens, channels))


class SwinTransformerBlock(nn.Module):
    """Pre-norm window attention + MLP; odd blocks shift the windows by half so information crosses them."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        shift_size: int,
        mlp_ratio: float,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
    ):
        super().__init__()
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, shift_mask: Tensor) -> Tensor:
        """x: [B, H, W, C] with H, W multiples of the window."""
        height, width = x.shape[1:3]
        shifted = self.norm1(x)
        if self.shift_size:
            shifted = torch.roll(shifted, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
        windows = self.attn(window_partition(shifted, self.window_size), shift_mask if self.shift_size else None)
        attended = window_merge(windows, self.window_size, height, width)
        if self.shift_size:
            attended = torch.roll(attended, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        x = x + self.drop_path(attended)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class SwinBlockGroup(nn.Module):
    """A run of Swin blocks alternating W-MSA and SW-MSA (the reference's `BasicLayer`)."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        qkv_bias: bool,
        drop_path: Sequence[float],
    ):
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                dim,
                num_heads,
                window_size,
                0 if index % 2 == 0 else window_size // 2,
                mlp_ratio,
                qkv_bias,
                drop_path[index],
            )
            for index in range(depth)
        )

    def forward(self, x: Tensor, shift_mask: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x, shift_mask)
        return x


class ResidualSwinTransformerBlock(nn.Module):
    """RSTB: Swin blocks, then a 3x3 conv, inside a residual connection (the conv adds back locality)."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        qkv_bias: bool,
        drop_path: Sequence[float],
    ):
        super().__init__()
        self.residual_group = SwinBlockGroup(dim, depth, num_heads, window_size, mlp_ratio, qkv_bias, drop_path)
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1)

    def forward(self, x: Tensor, shift_mask: Tensor) -> Tensor:
        """x: [B, H, W, C] channels-last tokens."""
        residual = self.residual_group(x, shift_mask).permute(0, 3, 1, 2)
        return self.conv(residual).permute(0, 2, 3, 1) + x


class PatchEmbed(nn.Module):
    """Feature map -> normalised channels-last tokens (patch size 1, as in SwinIR)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.permute(0, 2, 3, 1))


class Upsample(nn.Sequential):
    """Conv + PixelShuffle steps: x2 steps for powers of two, one x3 step for 3 (the reference's layout)."""

    def __init__(self, scale: int, num_feat: int):
        if scale & (scale - 1) == 0:
            factors = [2] * int(math.log2(scale))
        elif scale == 3:
            factors = [3]
        else:
            raise ValueError(f"scale {scale} is not supported: use a power of two or 3")
        layers: list[nn.Module] = []
        for factor in factors:
            layers += [nn.Conv2d(num_feat, factor * factor * num_feat, 3, 1, 1), nn.PixelShuffle(factor)]
        super().__init__(*layers)


class SwinIRGenerator(nn.Module):
    """Super-resolves RGB images in [0, 1] of any size by `scale`.

    Shallow conv -> RSTBs -> conv_after_body (+ shallow features) -> Character Pyramid Attention (optional)
    -> pixel-shuffle up-sampler -> conv_last, plus the bicubic up-scaled input when `bicubic_skip` (so the
    network learns only the missing detail). With `bicubic_skip=False` and no pyramid attention it computes
    what the reference classical-SR SwinIR computes, mean shift and `img_range` included.

    With `multi_frame`, it also takes a track's frames together, [B, K, 3, H, W] with the reference frame first,
    fuses their shallow features (and, for the bicubic skip, their pixels) with per-pixel weights
    (`FrameFusion`), and returns one SR image in the reference frame's geometry.
    """

    mean: Tensor  # a buffer, registered in __init__

    def __init__(
        self,
        scale: int,
        embed_dim: int = 144,
        depths: Sequence[int] = (3,) * 8,
        num_heads: int | Sequence[int] = 8,
        window_size: int = 6,
        mlp_ratio: float = 6.0,
        in_chans: int = 3,
        num_feat: int = 64,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.0,
        img_range: float = 1.0,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
        bicubic_skip: bool = True,
        use_pyramid_attention: bool = False,
        pyramid_layout: str = "brazilian",
        multi_frame: bool = False,
    ):
        super().__init__()
        heads = [num_heads] * len(depths) if isinstance(num_heads, int) else list(num_heads)
        if len(heads) != len(depths):
            raise ValueError(f"num_heads has {len(heads)} entries for {len(depths)} RSTBs")
        self.scale = scale
        self.embed_dim = embed_dim
        self.depths = tuple(depths)
        self.num_heads = tuple(heads)
        self.window_size = window_size
        self.mlp_ratio = mlp_ratio
        self.shift_size = window_size // 2
        self.img_range = img_range
        self.bicubic_skip = bicubic_skip
        mean = torch.tensor(rgb_mean if in_chans == 3 else [0.0] * in_chans, dtype=torch.float32)
        self.register_buffer("mean", mean.view(1, in_chans, 1, 1), persistent=False)
        # Padded (H, W, device) -> SW-MSA mask; a plain dict so the masks never enter a checkpoint.
        self._shift_masks: dict[tuple[int, int, torch.device], Tensor] = {}

        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
        self.frame_fusion = FrameFusion(embed_dim) if multi_frame else None
        self.patch_embed = PatchEmbed(embed_dim)
        drop_path = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        starts = [sum(depths[:index]) for index in range(len(depths))]
        self.layers = nn.ModuleList(
            ResidualSwinTransformerBlock(
                embed_dim, depth, head_count, window_size, mlp_ratio, qkv_bias, drop_path[start : start + depth]
            )
            for depth, head_count, start in zip(depths, heads, starts)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, 1, 1)
        self.pyramid_attention = (
            CharacterPyramidAttention(embed_dim, heads[-1], pyramid_layout) if use_pyramid_attention else None
        )
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, 1, 1), nn.LeakyReLU(inplace=True))
        self.upsample = Upsample(scale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, in_chans, 3, 1, 1)
        for module in (self.patch_embed, self.layers, self.norm):
            module.apply(_init_transformer_weights)

    def describe(self) -> str:
        """Its hyper-parameters in one line, as `lpasrn list-models` and `lpasrn model-summary` print them."""

        def uniform(values: tuple[int, ...]) -> str:
            return str(values[0]) if len(set(values)) == 1 else "/".join(map(str, values))

        frames = ", multi-frame" if self.frame_fusion is not None else ""
        return (
            f"x{self.scale}, embed {self.embed_dim}, {len(self.depths)} RSTB x {uniform(self.depths)} blocks, "
            f"{uniform(self.num_heads)} heads, window {self.window_size}, MLP {self.mlp_ratio:g}, "
            f"CPA {'on' if self.pyramid_attention is not None else 'off'}{frames}"
        )

    def completed_state(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """`state` as this generator loads it: a multi-frame generator seeded by a single-frame one's weights keeps
        its own fresh `frame_fusion` (which starts by averaging the frames); anything else unchanged."""
        if self.frame_fusion is None or any(key.startswith("frame_fusion.") for key in state):
            return state
        fresh = {f"frame_fusion.{key}": value for key, value in self.frame_fusion.state_dict().items()}
        return {**state, **fresh}

    def shift_mask(self, height: int, width: int, device: torch.device) -> Tensor:
        """The SW-MSA mask for a padded feature size, built on first use and then reused."""
        key = (height, width, device)
        if key not in self._shift_masks:
            self._shift_masks[key] = shifted_window_mask(height, width, self.window_size, self.shift_size, device)
        return self._shift_masks[key]

    def forward_features(self, x: Tensor) -> Tensor:
        """Deep features of a window-aligned [B, C, H, W] map, same shape."""
        shift_mask = self.shift_mask(x.shape[-2], x.shape[-1], x.device)
        tokens = self.patch_embed(x)
        for layer in self.layers:
            tokens = layer(tokens, shift_mask)
        return self.norm(tokens).permute(0, 3, 1, 2)

    def forward(self, lr: Tensor, layouts: Sequence[str] | None = None) -> Tensor:
        """lr: [B, 3, H, W] in [0, 1] (or, multi-frame, [B, K, 3, H, W] reference first) -> [B, 3, H*scale,
        W*scale]; `layouts` per image for pyramid attention."""
        height, width = lr.shape[-2:]
        shallow, lr = self._shallow_features(lr)
        deep = self.conv_after_body(self.forward_features(shallow)) + shallow
        if self.pyramid_attention is not None:
            deep = self._attend_to_characters(deep, height, width, layouts)
        # Like the reference, the up-sampler and conv_last see the padded map and only the image is cropped:
        # cropping the features first would change the border pixels their 3x3 convolutions compute.
        padded = self.conv_last(self.upsample(self.conv_before_upsample(deep))) / self.img_range
        residual = padded[..., : height * self.scale, : width * self.scale]
        if self.bicubic_skip:
            return residual + F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return residual + self.mean

    def _shallow_features(self, lr: Tensor) -> tuple[Tensor, Tensor]:
        """The padded shallow feature map and the [B, 3, H, W] image the bicubic skip up-scales: the input itself,
        or for a stack of frames, both fused with the same per-pixel frame weights."""
        if lr.dim() == 4:
            if self.frame_fusion is not None:  # one frame: its weight is 1, so skip the scoring
                return self._shallow_features(lr.unsqueeze(1))
            return self.conv_first(reflect_pad_to_multiple((lr - self.mean) * self.img_range, self.window_size)), lr
        if lr.dim() != 5 or self.frame_fusion is None:
            accepted = "[B, 3, H, W] or, multi-frame, [B, K, 3, H, W]"
            raise ValueError(f"expected LR images {accepted}, got shape {tuple(lr.shape)}")
        batch, frames, _, height, width = lr.shape
        flat = lr.reshape(batch * frames, *lr.shape[2:])
        shallow = self.conv_first(reflect_pad_to_multiple((flat - self.mean) * self.img_range, self.window_size))
        shallow = shallow.view(batch, frames, *shallow.shape[1:])
        if frames == 1:
            return shallow[:, 0], lr[:, 0]
        weights = self.frame_fusion(shallow)
        fused_lr = (weights[..., :height, :width] * lr).sum(dim=1)
        return (weights * shallow).sum(dim=1), fused_lr

    def _attend_to_characters(self, deep: Tensor, height: int, width: int, layouts: Sequence[str] | None) -> Tensor:
        """Pyramid attention on the image's own region of the padded map, so its slots span the plate only."""
        assert self.pyramid_attention is not None  # forward calls this only with pyramid attention
        inner = self.pyramid_attention(deep[..., :height, :width], layouts)
        if inner.shape[-2:] == deep.shape[-2:]:
            return inner
        rows = torch.cat([inner, deep[..., :height, width:]], dim=-1)
        return torch.cat([rows, deep[..., height:, :]], dim=-2)


def _init_transformer_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def load_generator_weights(model: SwinIRGenerator, path_or_ref: str) -> None:
    """Load our checkpoints or the reference SwinIR's releases (KAIR `params`/`params_ema` dicts) into `model`."""
    checkpoint = read_checkpoint(resolve_pretrained(path_or_ref))
    load_checked_state_dict(model, checkpoint.state_dict, path_or_ref, ignored_suffixes=REFERENCE_DERIVED_BUFFERS)
