"""PARSeq scene-text recogniser (Bautista & Atienza, ECCV 2022), sized and named like the authors' `strhub`.

A timm ViT encodes the 32x128 crop; a one-layer two-stream decoder reads it with position queries. Training
uses permutation language modelling (K orderings of the characters, mirrored), so one model decodes
autoregressively, non-autoregressively, and refines its own output with cloze-style context. State-dict names
match the authors', so their published checkpoints load (their 94-character head is mapped onto the plate
charset).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor, nn

from lpasrn.data.charset import CHARSET, DIGITS, LAYOUT_PATTERNS, LETTERS, PLATE_LENGTH, canonical_layout
from lpasrn.models.checkpoints import (
    CheckpointMismatchError,
    load_checked_state_dict,
    read_checkpoint,
    resolve_pretrained,
)
from lpasrn.models.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

# Charsets of the PARSeq authors' checkpoints, by head size; the order fixes their token ids.
AUTHORS_CHARSETS: dict[int, str] = {
    94: string.digits + string.ascii_lowercase + string.ascii_uppercase + string.punctuation,
    62: string.digits + string.ascii_lowercase + string.ascii_uppercase,
}

# Sizes of the authors' models (their configs/model/parseq.yaml and configs/experiment/parseq-tiny.yaml).
PARSEQ_SIZES: dict[str, dict[str, int]] = {
    "parseq": {"embed_dim": 384, "enc_num_heads": 6, "dec_num_heads": 12},
    "parseq_tiny": {"embed_dim": 192, "enc_num_heads": 3, "dec_num_heads": 6},
    # Not one of the authors' sizes: small enough to train all five stages on a laptop CPU in minutes.
    "parseq_micro": {"embed_dim": 96, "enc_depth": 4, "enc_num_heads": 3, "dec_num_heads": 3},
}


def ocr_input(images: Tensor, size: tuple[int, int]) -> Tensor:
    """[B, 3, H, W] in [0, 1] -> [B, 3, *size] in [-1, 1]: what every OCR here reads; bicubic and
    differentiable, so LCOFL's gradients reach the generator through it."""
    if tuple(images.shape[-2:]) != size:
        images = F.interpolate(images, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0.0, 1.0)
    return images * 2.0 - 1.0


@dataclass
class OCRResult:
    """What `PARSeq.read` saw: texts, one confidence per character, and the logits [B, T, num_classes]."""

    texts: list[str]
    confidences: list[list[float]]
    logits: Tensor


class ViTEncoder(VisionTransformer):
    """timm ViT without class token or classifier: every patch token becomes decoder memory."""

    def __init__(
        self,
        img_size: tuple[int, int],
        patch_size: tuple[int, int],
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float,
    ):
        super().__init__(
            img_size=img_size,
            patch_size=patch_size,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=True,
            num_classes=0,
            global_pool="",
            class_token=False,
        )

    def forward(self, x: Tensor, attn_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        """Every patch token, normed (no pooling, no head): the decoder attends to them all. The masks are timm's."""
        return self.forward_features(x, attn_mask=attn_mask, is_causal=is_causal)


class DecoderLayer(nn.Module):
    """Pre-LN two-stream layer (after XLNet): self-attention to the content under a permutation mask, then
    cross-attention to the image, then an MLP. Queries carry positions; content carries token embeddings."""

    def __init__(self, embed_dim: int, num_heads: int, mlp_dim: int, dropout: float):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(embed_dim, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(embed_dim, num_heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(embed_dim, mlp_dim)
        self.linear2 = nn.Linear(mlp_dim, embed_dim)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.norm_q = nn.LayerNorm(embed_dim)
        self.norm_c = nn.LayerNorm(embed_dim)
        self.dropout = nn.Dropout(dropout)

    def _stream(
        self,
        target: Tensor,
        target_norm: Tensor,
        context_norm: Tensor,
        memory: Tensor,
        attn_mask: Tensor | None,
        padding_mask: Tensor | None,
    ) -> Tensor:
        attended = self.self_attn(
            target_norm,
            context_norm,
            context_norm,
            attn_mask=attn_mask,
            key_padding_mask=padding_mask,
            need_weights=False,
        )[0]
        target = target + self.dropout(attended)
        target = target + self.dropout(self.cross_attn(self.norm1(target), memory, memory, need_weights=False)[0])
        return target + self.dropout(self.linear2(self.dropout(F.gelu(self.linear1(self.norm2(target))))))

    def forward(
        self,
        query: Tensor,
        content: Tensor,
        memory: Tensor,
        query_mask: Tensor | None,
        content_mask: Tensor | None,
        padding_mask: Tensor | None,
        update_content: bool,
    ) -> tuple[Tensor, Tensor]:
        query_norm, content_norm = self.norm_q(query), self.norm_c(content)
        query = self._stream(query, query_norm, content_norm, memory, query_mask, padding_mask)
        if update_content:
            content = self._stream(content, content_norm, content_norm, memory, content_mask, padding_mask)
        return query, content


class Decoder(nn.Module):
    def __init__(self, embed_dim: int, num_heads: int, mlp_dim: int, depth: int, dropout: float):
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(embed_dim, num_heads, mlp_dim, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)

    def forward(
        self,
        query: Tensor,
        content: Tensor,
        memory: Tensor,
        query_mask: Tensor | None = None,
        content_mask: Tensor | None = None,
        padding_mask: Tensor | None = None,
    ) -> Tensor:
        for index, layer in enumerate(self.layers):
            # The last layer's content output is never read, so it is not computed.
            query, content = layer(
                query,
                content,
                memory,
                query_mask,
                content_mask,
                padding_mask,
                update_content=index < len(self.layers) - 1,
            )
        return self.norm(query)


class TokenEmbedding(nn.Module):
    def __init__(self, num_tokens: int, embed_dim: int):
        super().__init__()
        self.embedding = nn.Embedding(num_tokens, embed_dim)
        self.scale = math.sqrt(embed_dim)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.scale * self.embedding(tokens)


def permutation_masks(order: Tensor) -> tuple[Tensor, Tensor]:
    """Attention masks (True = blocked) for one position order that starts with BOS and ends with EOS.

    Content position k is hidden from position q when k comes after q in the order; queries also never see
    their own token. Returns (content_mask, query_mask), both [L - 1, L - 1] for an order of length L.
    """
    length = order.numel()
    rank = torch.empty_like(order)
    rank[order] = torch.arange(length, device=order.device)
    later = rank[None, :] > rank[:, None]
    content_mask = later[:-1, :-1]
    query_mask = (later | torch.eye(length, dtype=torch.bool, device=order.device))[1:, :-1]
    return content_mask, query_mask


class PARSeq(nn.Module):
    """Reads text from RGB crops in [0, 1] of any size (resized to `img_size`, normalised to [-1, 1]).

    `decode_ar` picks autoregressive (default, like the authors) or one-shot decoding; `refine_iters` rounds of
    cloze refinement follow either. `plm_loss` is the permutation-language-modelling training loss.
    """

    def __init__(
        self,
        charset: str = CHARSET,
        max_label_length: int = PLATE_LENGTH,
        img_size: Sequence[int] = (32, 128),
        patch_size: Sequence[int] = (4, 8),
        embed_dim: int = 384,
        enc_num_heads: int = 6,
        enc_mlp_ratio: float = 4,
        enc_depth: int = 12,
        dec_num_heads: int = 12,
        dec_mlp_ratio: float = 4,
        dec_depth: int = 1,
        perm_num: int = 6,
        perm_forward: bool = True,
        perm_mirrored: bool = True,
        decode_ar: bool = True,
        refine_iters: int = 1,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.tokenizer = Tokenizer(charset)
        self.max_label_length = max_label_length
        self.img_size = (int(img_size[0]), int(img_size[1]))
        self.perm_num = perm_num
        self.perm_forward = perm_forward
        self.perm_mirrored = perm_mirrored
        self.decode_ar = decode_ar
        self.refine_iters = refine_iters

        self.encoder = ViTEncoder(
            self.img_size, (int(patch_size[0]), int(patch_size[1])), embed_dim, enc_depth, enc_num_heads, enc_mlp_ratio
        )
        self.decoder = Decoder(embed_dim, dec_num_heads, int(embed_dim * dec_mlp_ratio), dec_depth, dropout)
        self.head = nn.Linear(embed_dim, self.tokenizer.num_classes)  # BOS and PAD are never predicted
        self.text_embed = TokenEmbedding(len(self.tokenizer), embed_dim)
        self.pos_queries = nn.Parameter(torch.empty(1, max_label_length + 1, embed_dim))  # +1 for EOS
        self.dropout = nn.Dropout(dropout)
        for module in (self.decoder, self.head, self.text_embed):  # the encoder keeps timm's own init
            module.apply(_init_decoder_weights)
        nn.init.trunc_normal_(self.pos_queries, std=0.02)

    @property
    def charset(self) -> str:
        return self.tokenizer.charset

    def preprocess(self, images: Tensor) -> Tensor:
        return ocr_input(images, self.img_size)

    def encode(self, normalized_images: Tensor) -> Tensor:
        return self.encoder(normalized_images)

    def decode(
        self,
        tokens: Tensor,
        memory: Tensor,
        content_mask: Tensor | None = None,
        padding_mask: Tensor | None = None,
        query: Tensor | None = None,
        query_mask: Tensor | None = None,
    ) -> Tensor:
        """Decoder output for position queries given token context `tokens` [B, L] (BOS first)."""
        batch, length = tokens.shape
        null_context = self.text_embed(tokens[:, :1])  # BOS carries no position
        content = torch.cat([null_context, self.pos_queries[:, : length - 1] + self.text_embed(tokens[:, 1:])], dim=1)
        if query is None:
            query = self.pos_queries[:, :length].expand(batch, -1, -1)
        return self.decoder(self.dropout(query), self.dropout(content), memory, query_mask, content_mask, padding_mask)

    def forward(self, images: Tensor, max_length: int | None = None) -> Tensor:
        """Logits [B, T, num_classes] for images in [0, 1]; T = max_length + 1 (with max_length None,
        AR decoding stops once every image has produced EOS, so T can be shorter)."""
        return self._greedy_decode(self.encode(self.preprocess(images)), max_length)

    def _greedy_decode(self, memory: Tensor, max_length: int | None, disallowed: Tensor | None = None) -> Tensor:
        """AR or NAR decoding, then `refine_iters` rounds of refinement; `disallowed` [B, steps, classes] (True =
        forbidden) constrains every choice, so constrained tokens are also what later steps see as context."""
        num_steps = min(self.max_label_length if max_length is None else max_length, self.max_label_length) + 1
        if self.decode_ar:
            logits = self._decode_autoregressive(memory, num_steps, max_length is None, disallowed)
        else:
            bos = torch.full((memory.shape[0], 1), self.tokenizer.bos_id, dtype=torch.long, device=memory.device)
            query = self.pos_queries[:, :num_steps].expand(memory.shape[0], -1, -1)
            logits = _forbid(self.head(self.decode(bos, memory, query=query)), disallowed)
        for _ in range(self.refine_iters):
            logits = self._refine(memory, logits, disallowed)
        return logits

    def _decode_autoregressive(
        self, memory: Tensor, num_steps: int, stop_at_eos: bool, disallowed: Tensor | None
    ) -> Tensor:
        batch, device = memory.shape[0], memory.device
        causal_mask = torch.ones(num_steps, num_steps, dtype=torch.bool, device=device).triu(1)
        tokens = torch.full((batch, num_steps), self.tokenizer.pad_id, dtype=torch.long, device=device)
        tokens[:, 0] = self.tokenizer.bos_id
        steps: list[Tensor] = []
        for step in range(num_steps):
            # One query at a time: under the causal order earlier outputs never change, so they are kept.
            out = self.decode(
                tokens[:, : step + 1],
                memory,
                causal_mask[: step + 1, : step + 1],
                query=self.pos_queries[:, step : step + 1].expand(batch, -1, -1),
                query_mask=causal_mask[step : step + 1, : step + 1],
            )
            steps.append(_forbid(self.head(out), disallowed, step))
            if step + 1 < num_steps:
                tokens[:, step + 1] = steps[-1][:, 0].argmax(-1)
                if stop_at_eos and (tokens == self.tokenizer.eos_id).any(dim=-1).all():
                    break
        return torch.cat(steps, dim=1)

    def _refine(self, memory: Tensor, logits: Tensor, disallowed: Tensor | None) -> Tensor:
        """Re-decode every position with the previous prediction as cloze context (only its own token hidden)."""
        batch, length = logits.shape[:2]
        bos = torch.full((batch, 1), self.tokenizer.bos_id, dtype=torch.long, device=logits.device)
        context = torch.cat([bos, logits[:, :-1].argmax(-1)], dim=1)
        after_eos = (context == self.tokenizer.eos_id).int().cumsum(-1) > 0
        ones = torch.ones(length, length, dtype=torch.bool, device=logits.device)
        cloze_mask = ones.triu(1) & ~ones.triu(2)
        # As in the authors' implementation the content stream (read only when dec_depth > 1) shares the cloze mask.
        query = self.pos_queries[:, :length].expand(batch, -1, -1)
        out = self.decode(context, memory, cloze_mask, after_eos, query=query, query_mask=cloze_mask)
        return _forbid(self.head(out), disallowed)

    def sample_permutations(self, num_chars: int, device: torch.device | None = None) -> Tensor:
        """[K, num_chars + 2] position orders shared by a batch (BOS first, EOS last).

        The canonical left-to-right order comes first and its reverse second; the reverse also puts EOS first
        (an empty context for EOS, which NAR decoding needs). The rest are random orders, each with its mirror.
        """
        if num_chars <= 1:
            return torch.arange(num_chars + 2, device=device).unsqueeze(0)
        max_orders = math.factorial(num_chars) // (2 if self.perm_mirrored else 1)
        num_orders = min(self.perm_num // 2 if self.perm_mirrored else self.perm_num, max_orders)
        canonical = tuple(range(num_chars))
        orders = [canonical] if self.perm_forward else []
        if num_chars < 5:  # few orders exist: draw without repeats (one per mirrored pair)
            pool = [
                order
                for order in itertools.permutations(canonical)
                if (not self.perm_mirrored or order < order[::-1]) and order not in orders
            ]
            orders += [pool[index] for index in torch.randperm(len(pool))[: num_orders - len(orders)].tolist()]
        else:
            orders += [tuple(torch.randperm(num_chars).tolist()) for _ in range(num_orders - len(orders))]
        chars = torch.tensor(orders, dtype=torch.long)
        if self.perm_mirrored:
            chars = torch.stack([chars, chars.flip(-1)], dim=1).reshape(-1, num_chars)
        perms = torch.cat(
            [
                torch.zeros(len(chars), 1, dtype=torch.long),
                chars + 1,
                torch.full((len(chars), 1), num_chars + 1, dtype=torch.long),
            ],
            dim=1,
        )
        if len(perms) > 1:
            perms[1, 1:] = num_chars + 1 - torch.arange(num_chars + 1)
        return perms.to(device)

    def plm_loss(self, images: Tensor, targets: Sequence[str]) -> Tensor:
        """Permutation language modelling loss: mean cross-entropy over the sampled orders (images in [0, 1])."""
        tok = self.tokenizer
        longest = max((len(text) for text in targets), default=0)
        if longest > self.max_label_length:
            raise ValueError(f"a target has {longest} characters; this model reads at most {self.max_label_length}")
        memory = self.encode(self.preprocess(images))
        tokens = tok.encode(targets, memory.device)
        context, expected = tokens[:, :-1], tokens[:, 1:]
        # EOS is never context for another position in any order, and PAD is never context at all.
        padding_mask = (context == tok.pad_id) | (context == tok.eos_id)
        total = torch.zeros((), device=memory.device)
        count = torch.zeros((), dtype=torch.long, device=memory.device)  # a tensor: no host sync per order
        for index, order in enumerate(self.sample_permutations(tokens.shape[1] - 2, memory.device)):
            content_mask, query_mask = permutation_masks(order)
            logits = self.head(self.decode(context, memory, content_mask, padding_mask, query_mask=query_mask))
            total = total + F.cross_entropy(
                logits.flatten(0, 1).float(), expected.flatten(), ignore_index=tok.pad_id, reduction="sum"
            )
            count = count + (expected != tok.pad_id).sum()
            if index == 1:  # EOS is learned from the canonical and reverse orders only
                expected = expected.masked_fill(expected == tok.eos_id, tok.pad_id)
        return total / count.clamp(min=1)

    def training_loss(self, images: Tensor, targets: Sequence[str]) -> Tensor:
        """What stage 0 minimises: the PLM loss, as the authors train."""
        return self.plm_loss(images, targets)

    def layout_mask(self, layouts: Sequence[str], device: torch.device | None = None) -> Tensor:
        """[B, PLATE_LENGTH + 1, num_classes] True where a class breaks the layout: digits in letter slots,
        letters in digit slots, EOS before the end, and anything but EOS after the seventh character."""
        if self.max_label_length < PLATE_LENGTH:
            raise ValueError(f"layout-constrained reading needs max_label_length >= {PLATE_LENGTH}")
        tokens = self.tokenizer.tokens[: self.tokenizer.num_classes]
        allowed_by_slot = {
            kind: torch.tensor([token in chars for token in tokens]) for kind, chars in (("L", LETTERS), ("N", DIGITS))
        }
        if not all(allowed.any() for allowed in allowed_by_slot.values()):
            raise ValueError("layout-constrained reading needs digits and capital letters in the charset")
        only_eos = torch.zeros(len(tokens), dtype=torch.bool)
        only_eos[self.tokenizer.eos_id] = True
        masks = []
        for name in layouts:
            slots = [allowed_by_slot[kind] for kind in LAYOUT_PATTERNS[canonical_layout(name)]]
            masks.append(~torch.stack([*slots, only_eos]))
        return torch.stack(masks).to(device)

    @torch.inference_mode()
    def read(self, images: Tensor, layout_constrained: str | Sequence[str] | None = None) -> OCRResult:
        """Texts of images in [0, 1]; `layout_constrained` (one layout for all, or one per image) forces
        letters into letter slots and digits into digit slots, in AR context and refinement too."""
        with evaluating(self):
            memory = self.encode(self.preprocess(images))
            if layout_constrained is None:
                logits = self._greedy_decode(memory, None)
            else:
                layouts = (
                    [layout_constrained] * len(images)
                    if isinstance(layout_constrained, str)
                    else list(layout_constrained)
                )
                if len(layouts) != len(images):
                    raise ValueError(f"got {len(layouts)} layouts for {len(images)} images")
                logits = self._greedy_decode(memory, PLATE_LENGTH, self.layout_mask(layouts, memory.device))
        texts, confidences = self.tokenizer.decode_probabilities(logits.float().softmax(-1))
        return OCRResult(texts=texts, confidences=confidences, logits=logits)


def _forbid(logits: Tensor, disallowed: Tensor | None, first_step: int = 0) -> Tensor:
    """-inf where `disallowed` [B, steps, classes] is True, for the steps `logits` [B, T, classes] covers."""
    if disallowed is None:
        return logits
    return logits.masked_fill(disallowed[:, first_step : first_step + logits.shape[1]], float("-inf"))


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode for the duration (no dropout), then back to whatever mode the caller had."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _init_decoder_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def create_parseq(name: str = "parseq", **overrides) -> PARSeq:
    """A PARSeq of one of the authors' sizes (`parseq`, `parseq_tiny`), any argument overridable."""
    if name not in PARSEQ_SIZES:
        raise ValueError(f"unknown PARSeq size {name!r} (expected one of {sorted(PARSEQ_SIZES)})")
    return PARSeq(**(PARSEQ_SIZES[name] | overrides))


def adapt_state_dict(
    state: Mapping[str, Tensor], model: PARSeq, source_charset: str | None = None, source: str = "checkpoint"
) -> dict[str, Tensor]:
    """Fit a PARSeq checkpoint to `model`: pick the head and embedding rows of the model's characters (plus the
    special tokens) and cut the position queries to the model's label length. Other tensors pass unchanged."""
    state = dict(state)
    if "head.bias" not in state:
        return state
    num_source_chars = state["head.bias"].shape[0] - 1
    charset = source_charset or _charset_of_head(num_source_chars, model.charset)
    if charset is None or len(charset) != num_source_chars:
        raise CheckpointMismatchError(
            f"{source}: its head predicts {num_source_chars} characters, which matches no known charset "
            f"(the PARSeq authors' {sorted(AUTHORS_CHARSETS)} or this model's {len(model.charset)})"
        )
    if charset != model.charset:
        source_tokens = Tokenizer(charset)
        head_rows = [source_tokens.eos_id] + [
            source_tokens.class_id(_source_char(char, charset, source)) for char in model.charset
        ]
        embed_rows = head_rows + [source_tokens.bos_id, source_tokens.pad_id]
        state["head.weight"] = state["head.weight"][head_rows]
        state["head.bias"] = state["head.bias"][head_rows]
        if "text_embed.embedding.weight" in state:
            state["text_embed.embedding.weight"] = state["text_embed.embedding.weight"][embed_rows]
    num_queries = model.pos_queries.shape[1]
    if "pos_queries" in state and state["pos_queries"].shape[1] > num_queries:
        state["pos_queries"] = state["pos_queries"][:, :num_queries]
    return state


def _charset_of_head(num_chars: int, model_charset: str) -> str | None:
    if num_chars == len(model_charset):
        return model_charset
    return AUTHORS_CHARSETS.get(num_chars)


def _source_char(char: str, charset: str, source: str) -> str:
    """The checkpoint's character for a plate character: itself, or its lower case in case-folded charsets."""
    for candidate in (char, char.lower()):
        if candidate in charset:
            return candidate
    raise CheckpointMismatchError(f"{source}: its charset has no {char!r}, which plates need")


def load_parseq_weights(model: PARSeq, path_or_ref: str) -> None:
    """Load a local file or `hf://` reference: the authors' checkpoints (.pt, Lightning .ckpt) or our own."""
    checkpoint = read_checkpoint(resolve_pretrained(path_or_ref))
    source_charset = checkpoint.hyper_parameters.get("charset_train")
    state = adapt_state_dict(
        checkpoint.state_dict, model, source_charset if isinstance(source_charset, str) else None, path_or_ref
    )
    load_checked_state_dict(model, state, path_or_ref)
