"""Texts <-> PARSeq token ids, laid out as the PARSeq authors do: [E], the charset, then [B] and [P].

End-of-sequence first makes class 0 of the head "end of text"; BOS and PAD come last because the head never
predicts them, so it is `len(charset) + 1` wide while the token embedding has `len(charset) + 3` rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence


class Tokenizer:
    EOS = "[E]"
    BOS = "[B]"
    PAD = "[P]"

    def __init__(self, charset: str):
        if len(set(charset)) != len(charset):
            raise ValueError(f"charset {charset!r} repeats characters")
        self.charset = charset
        self.tokens: tuple[str, ...] = (self.EOS, *charset, self.BOS, self.PAD)
        self._ids = {token: index for index, token in enumerate(self.tokens)}
        self.eos_id, self.bos_id, self.pad_id = self._ids[self.EOS], self._ids[self.BOS], self._ids[self.PAD]

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def num_classes(self) -> int:
        """Width of the prediction head: EOS and every character."""
        return len(self.charset) + 1

    def class_id(self, char: str) -> int:
        return self._ids[char]

    def encode(self, texts: Sequence[str], device: torch.device | str | None = None) -> Tensor:
        """[B, longest + 2] ids: BOS, the characters, EOS, then PAD."""
        rows = []
        for text in texts:
            unknown = sorted(set(text) - set(self.charset))
            if unknown:
                raise ValueError(f"text {text!r} has characters outside the charset: {''.join(unknown)!r}")
            rows.append(
                torch.tensor(
                    [self.bos_id, *(self._ids[char] for char in text), self.eos_id], dtype=torch.long, device=device
                )
            )
        return pad_sequence(rows, batch_first=True, padding_value=self.pad_id)

    def decode(self, ids: Tensor | Sequence[Sequence[int]]) -> list[str]:
        """Token ids -> texts: BOS and PAD are skipped and each text ends at its first EOS."""
        rows = ids.tolist() if isinstance(ids, Tensor) else ids
        texts = []
        for row in rows:
            row = list(row)
            row = row[: row.index(self.eos_id)] if self.eos_id in row else row
            texts.append("".join(self.tokens[index] for index in row if index not in (self.bos_id, self.pad_id)))
        return texts

    def decode_probabilities(self, probs: Tensor) -> tuple[list[str], list[list[float]]]:
        """Greedy read of [B, T, num_classes] probabilities: texts (up to EOS) and each character's probability."""
        best_probs, best_ids = probs.max(dim=-1)
        texts = self.decode(best_ids)
        confidences = [row[: len(text)] for row, text in zip(best_probs.tolist(), texts)]
        return texts, confidences
