"""PARSeq OCR: sizes and names of the authors' models, their checkpoints, hub loading, decoding, layout constraint."""

from __future__ import annotations

import shutil
import string
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont
from safetensors.torch import save_file

from lpasrn.data.charset import CHARSET
from lpasrn.models.checkpoints import CheckpointError, CheckpointMismatchError, read_checkpoint, resolve_pretrained
from lpasrn.models.ocr import load_ocr_weights
from lpasrn.models.parseq import AUTHORS_CHARSETS, PARSeq, create_parseq, load_parseq_weights, permutation_masks
from lpasrn.models.tokenizer import Tokenizer

PARSEQ_PARAMETERS = 23_781_157  # the authors' 94-character model has 23,832,671: head, embedding, queries differ
PARSEQ_TINY_PARAMETERS = 5_992_357
TINY = dict(embed_dim=32, enc_depth=1, enc_num_heads=2, dec_num_heads=2, enc_mlp_ratio=2, dec_mlp_ratio=2)
FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"
PLATES = ["ABC1234", "XYZ9876", "BRA2E19", "QWE1R23", "JKL0051", "MNO5P67"]


def tiny_parseq(**overrides) -> PARSeq:
    torch.manual_seed(0)
    return PARSeq(**(TINY | overrides)).eval()


def random_images(batch: int = 2, size: tuple[int, int] = (32, 96)) -> torch.Tensor:
    return torch.rand(batch, 3, *size, generator=torch.Generator().manual_seed(3))


def render_plate(text: str, size: tuple[int, int] = (96, 32)) -> torch.Tensor:
    """Black text on white, centred, as a [3, H, W] tensor in [0, 1]."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT), 20)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    draw.text(((size[0] - right + left) / 2 - left, (size[1] - bottom + top) / 2 - top), text, fill="black", font=font)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255.0


class NotATensor:
    """Anything that is not a tensor: weights-only loading must refuse to build it."""


# --- sizes and names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [("parseq", PARSEQ_PARAMETERS), ("parseq_tiny", PARSEQ_TINY_PARAMETERS)])
def test_parameter_counts_are_pinned(name: str, expected: int) -> None:
    with torch.no_grad():
        model = create_parseq(name)
    count = sum(param.numel() for param in model.parameters())
    assert count == expected
    if name == "parseq":
        assert 23.5e6 <= count <= 24.1e6


def test_state_dict_names_and_shapes_follow_the_authors() -> None:
    model = tiny_parseq()
    state = model.state_dict()
    for key in [
        "encoder.patch_embed.proj.weight",
        "encoder.pos_embed",
        "encoder.blocks.0.attn.qkv.weight",
        "encoder.blocks.0.mlp.fc2.bias",
        "encoder.norm.weight",
        "decoder.layers.0.self_attn.in_proj_weight",
        "decoder.layers.0.cross_attn.out_proj.weight",
        "decoder.layers.0.linear1.weight",
        "decoder.layers.0.norm_q.weight",
        "decoder.layers.0.norm_c.bias",
        "decoder.norm.weight",
    ]:
        assert key in state
    assert state["head.weight"].shape == (37, 32)  # EOS + 36 characters
    assert state["text_embed.embedding.weight"].shape == (39, 32)  # + BOS and PAD
    assert state["pos_queries"].shape == (1, 8, 32)  # 7 characters + EOS


# --- tokenizer and permutations --------------------------------------------------------------------------------


def test_tokenizer_puts_eos_first_and_bos_pad_last() -> None:
    tokenizer = Tokenizer(CHARSET)
    ids = tokenizer.encode(["AB1", "Z"])
    assert (tokenizer.eos_id, tokenizer.bos_id, tokenizer.pad_id) == (0, 37, 38)
    assert ids.tolist() == [[37, 11, 12, 2, 0], [37, 36, 0, 38, 38]]
    assert tokenizer.decode(ids) == ["AB1", "Z"]
    probs = torch.nn.functional.one_hot(ids[:, 1:], num_classes=39)[..., :37].float()
    assert tokenizer.decode_probabilities(probs) == (["AB1", "Z"], [[1.0, 1.0, 1.0], [1.0]])


def test_tokenizer_rejects_characters_outside_the_charset() -> None:
    with pytest.raises(ValueError, match="outside the charset: '-'"):
        Tokenizer(CHARSET).encode(["AB-1"])


def test_permutations_are_canonical_reverse_then_mirrored_pairs() -> None:
    torch.manual_seed(0)
    perms = tiny_parseq().sample_permutations(7)
    assert perms.shape == (6, 9)
    assert perms[0].tolist() == list(range(9))
    assert perms[1].tolist() == [0, 8, 7, 6, 5, 4, 3, 2, 1]  # reverse, and EOS with an empty context
    for first, mirror in ((perms[2], perms[3]), (perms[4], perms[5])):
        assert first[1:-1].flip(0).tolist() == mirror[1:-1].tolist()
    assert len({tuple(perm.tolist()) for perm in perms}) == 6


def test_canonical_order_gives_causal_masks() -> None:
    content_mask, query_mask = permutation_masks(torch.arange(5))
    causal = torch.ones(4, 4, dtype=torch.bool).triu(1)
    assert torch.equal(content_mask, causal)
    assert torch.equal(query_mask, causal)


# --- preprocessing and decoding --------------------------------------------------------------------------------


def test_preprocess_resizes_to_32x128_in_minus_one_to_one_and_passes_gradients() -> None:
    images = random_images().requires_grad_()
    prepared = tiny_parseq().preprocess(images)
    assert prepared.shape == (2, 3, 32, 128)
    assert prepared.min() >= -1 and prepared.max() <= 1
    prepared.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


@pytest.mark.parametrize("decode_ar", [True, False])
def test_forward_returns_logits_for_every_position(decode_ar: bool) -> None:
    model = tiny_parseq(decode_ar=decode_ar)
    with torch.no_grad():
        logits = model(random_images(), max_length=7)
    assert logits.shape == (2, 8, 37)


def test_plm_loss_is_differentiable_and_finite() -> None:
    torch.manual_seed(0)
    model = tiny_parseq().train()
    loss = model.plm_loss(random_images(), ["ABC1234", "BRA2E19"])
    loss.backward()
    assert torch.isfinite(loss)
    assert model.pos_queries.grad is not None and model.encoder.patch_embed.proj.weight.grad is not None


def test_read_restores_the_callers_mode() -> None:
    model = tiny_parseq().train()
    model.read(random_images())
    assert model.training


@pytest.fixture(scope="module")
def trained_reader() -> tuple[PARSeq, torch.Tensor]:
    """A tiny PARSeq overfitted with the PLM loss on six rendered plates (a few seconds on a CPU)."""
    torch.manual_seed(0)
    model = PARSeq(
        embed_dim=64, enc_depth=2, enc_num_heads=2, dec_num_heads=2, enc_mlp_ratio=2, dec_mlp_ratio=2, dropout=0.0
    )
    images = torch.stack([render_plate(text) for text in PLATES])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: one thread is fastest, and far faster on a shared machine
    try:
        for _ in range(150):
            loss = model.plm_loss(images, PLATES)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval(), images


@pytest.mark.parametrize("decode_ar", [True, False])
@pytest.mark.parametrize("refine_iters", [0, 1])
def test_trained_model_reads_its_plates_in_ar_and_nar_modes(trained_reader, decode_ar: bool, refine_iters: int) -> None:
    model, images = trained_reader
    model.decode_ar, model.refine_iters = decode_ar, refine_iters
    result = model.read(images)
    assert result.texts == PLATES
    assert all(len(conf) == 7 and min(conf) > 0.5 for conf in result.confidences)


def test_ar_and_nar_logits_agree_on_the_trained_model(trained_reader) -> None:
    model, images = trained_reader
    model.refine_iters = 0
    with torch.no_grad():
        model.decode_ar = True
        autoregressive = model(images, max_length=7)
        model.decode_ar = False
        non_autoregressive = model(images, max_length=7)
    assert torch.equal(autoregressive.argmax(-1), non_autoregressive.argmax(-1))


def test_layout_constraint_puts_digits_in_digit_slots() -> None:
    model = tiny_parseq()
    tokenizer = model.tokenizer
    with torch.no_grad():  # logits independent of the image: 'B' best, then '8', EOS lowest
        model.head.weight.zero_()
        model.head.bias.fill_(-5.0)
        model.head.bias[tokenizer.class_id("B")] = 5.0
        model.head.bias[tokenizer.class_id("8")] = 3.0
    images = random_images()
    assert model.read(images).texts == ["BBBBBBBB"] * 2
    assert model.read(images, layout_constrained="Brazilian").texts == ["BBB8888"] * 2
    constrained = model.read(images, layout_constrained=["brazilian", "Mercosur"])
    assert constrained.texts == ["BBB8888", "BBB8B88"]
    assert [len(conf) for conf in constrained.confidences] == [7, 7]


# --- checkpoints -----------------------------------------------------------------------------------------------


def authors_style_model() -> PARSeq:
    """A model with the shapes of the authors' checkpoints: 94 characters, labels up to 25 long."""
    return tiny_parseq(charset=AUTHORS_CHARSETS[94], max_label_length=25, decode_ar=False, refine_iters=0)


def test_authors_94_character_lightning_checkpoint_maps_onto_the_plate_charset(tmp_path: Path) -> None:
    source = authors_style_model()
    path = tmp_path / "parseq-authors.ckpt"
    torch.save(
        {
            "state_dict": {f"model.{key}": value for key, value in source.state_dict().items()},
            "pytorch-lightning_version": "1.7.7",
        },
        path,
    )
    target = tiny_parseq(decode_ar=False, refine_iters=0)
    torch.manual_seed(42)
    torch.nn.init.normal_(target.head.weight)
    load_parseq_weights(target, str(path))

    images = random_images()
    with torch.no_grad():
        source_logits, target_logits = source(images), target(images)
    columns = [0] + [1 + AUTHORS_CHARSETS[94].index(char) for char in CHARSET]
    assert target_logits.shape == (2, 8, 37)
    torch.testing.assert_close(target_logits, source_logits[:, :8, columns])


def test_case_folded_checkpoint_maps_capitals_to_lower_case_rows(tmp_path: Path) -> None:
    lowercase = string.digits + string.ascii_lowercase
    source = tiny_parseq(charset=lowercase, max_label_length=25)
    path = tmp_path / "lowercase.ckpt"
    torch.save(
        {
            "state_dict": {f"model.{key}": value for key, value in source.state_dict().items()},
            "hyper_parameters": {"charset_train": lowercase},
        },
        path,
    )
    target = tiny_parseq()
    load_parseq_weights(target, str(path))
    row_of_a = 1 + lowercase.index("a")
    torch.testing.assert_close(target.head.weight[target.tokenizer.class_id("A")], source.head.weight[row_of_a])


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_own_checkpoints_round_trip_as_pt_and_safetensors(tmp_path: Path, suffix: str) -> None:
    source = tiny_parseq()
    path = tmp_path / f"ocr{suffix}"
    state = {key: value.contiguous() for key, value in source.state_dict().items()}
    torch.save(state, path) if suffix == ".pt" else save_file(state, str(path))
    target = tiny_parseq()
    load_ocr_weights(target, "parseq_tiny", str(path))
    images = random_images()
    with torch.no_grad():
        assert torch.equal(source(images), target(images))


def test_checkpoint_of_another_size_names_the_mismatched_keys(tmp_path: Path) -> None:
    path = tmp_path / "wider.pt"
    torch.save(tiny_parseq(embed_dim=64).state_dict(), path)
    expected = r"cross_attn.in_proj_weight \(checkpoint \(192, 64\) vs model \(96, 32\)\)"
    with pytest.raises(CheckpointMismatchError, match=expected):
        load_parseq_weights(tiny_parseq(), str(path))


def test_checkpoint_with_an_unknown_charset_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "odd.pt"
    torch.save(tiny_parseq(charset="0123456789").state_dict(), path)
    with pytest.raises(CheckpointMismatchError, match="predicts 10 characters"):
        load_parseq_weights(tiny_parseq(), str(path))


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "unsafe.pt"
    torch.save({"state_dict": tiny_parseq().state_dict(), "extra": NotATensor()}, path)
    with pytest.raises(CheckpointError, match="refusing to unpickle.*NotATensor"):
        read_checkpoint(path)


def test_missing_local_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        resolve_pretrained(str(tmp_path / "nowhere.pt"))


# --- Hugging Face hub ------------------------------------------------------------------------------------------


@pytest.fixture
def offline_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty hub cache under tmp_path, with the hub switched offline."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))  # read at import time by the hub
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def add_to_hub_cache(cache: Path, repo_id: str, filename: str, source: Path) -> None:
    """Place a file the way `hf_hub_download` leaves it: snapshots/<revision>/<file> and refs/main."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo_folder = cache / f"models--{repo_id.replace('/', '--')}"
    (repo_folder / "refs").mkdir(parents=True)
    (repo_folder / "refs" / "main").write_text(revision)
    target = repo_folder / "snapshots" / revision / filename
    target.parent.mkdir(parents=True)
    shutil.copy(source, target)


def test_hub_reference_resolves_from_the_cache_offline(offline_hub_cache: Path, tmp_path: Path) -> None:
    source = tiny_parseq()
    local = tmp_path / "weights.safetensors"
    save_file({key: value.contiguous() for key, value in source.state_dict().items()}, str(local))
    add_to_hub_cache(offline_hub_cache, "plates-lab/parseq-plates", "weights.safetensors", local)

    resolved = resolve_pretrained("hf://plates-lab/parseq-plates/weights.safetensors")
    assert resolved.is_file() and str(resolved).startswith(str(offline_hub_cache))
    target = tiny_parseq()
    load_ocr_weights(target, "parseq_tiny", "hf://plates-lab/parseq-plates/weights.safetensors")
    assert torch.equal(target.head.weight, source.head.weight)


def test_hub_reference_missing_from_the_cache_offline_is_a_checkpoint_error(offline_hub_cache: Path) -> None:
    with pytest.raises(CheckpointError, match="not in the Hugging Face cache.*HF_HUB_OFFLINE"):
        resolve_pretrained("hf://plates-lab/absent/model.pt")


def test_malformed_hub_reference_is_a_checkpoint_error() -> None:
    with pytest.raises(CheckpointError, match="owner/repo/path"):
        resolve_pretrained("hf://just-a-repo")
