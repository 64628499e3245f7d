"""`lpasrn export --format onnx`: graphs that read like PyTorch (logits within 1e-4, the same plates), any batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lpasrn.cli import run as lpasrn_run
from lpasrn.data.plates import load_rgb, scan_lr_tracks
from lpasrn.inference.prediction import load_reader, predict
from lpasrn.inference.submission import read_submission
from tests.lpasrn.inference.test_prediction import lr_only_root, tiny_bundle  # noqa: F401  (lr_only_root is a fixture)

pytest.importorskip("onnx", reason="ONNX export needs the espdl extra: pip install -e '.[espdl]'")
pytest.importorskip("onnxruntime", reason="running ONNX graphs needs the espdl extra: pip install -e '.[espdl]'")

OCR_KINDS = ("slot_cnn", "parseq_micro")  # one of each OCR family: fixed slots, and PARSeq's decoder


@pytest.fixture(scope="module", params=OCR_KINDS)
def exported(request, tmp_path_factory) -> tuple[str, Path]:
    """A tiny bundle of each OCR kind and its export, made once per module."""
    folder = tmp_path_factory.mktemp(request.param)
    bundle = tiny_bundle(folder / "bundle.pt", request.param)
    out = folder / "onnx"
    assert lpasrn_run(["export", "--checkpoint", bundle, "--format", "onnx", "--out", str(out)]) == 0
    return bundle, out


def test_the_export_holds_both_graphs_and_what_reads_them(exported):
    _, out = exported
    assert sorted(path.name for path in out.iterdir()) == ["generator.onnx", "meta.json", "ocr.onnx"]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["lr_size"] == [16, 48] and meta["hr_size"] == [32, 96] and meta["plate_length"] == 7
    if meta["ocr_model_type"].startswith("parseq"):
        assert meta["ocr_decoding"] == "non-autoregressive, 1 refinement round(s)"


def test_onnx_logits_match_pytorch_within_1e_4_at_any_batch_size(exported, lr_only_root):  # noqa: F811
    bundle, out = exported
    frames = torch.stack(
        [load_rgb(path, (16, 48)) for track in scan_lr_tracks(lr_only_root) for path in track.lr_paths]
    )
    torch_reader, onnx_reader = load_reader(bundle, decode="nar"), load_reader(onnx_dir=out)
    for batch in (frames[:1], frames):  # exported at batch 2: the batch axis is dynamic
        expected, got = torch_reader.token_logits(batch), onnx_reader.token_logits(batch)
        assert got.shape == expected.shape == (len(batch), 8, 37)
        assert (got - expected).abs().max() < 1e-4


def test_onnx_and_pytorch_read_the_same_plates(exported, lr_only_root, tmp_path):  # noqa: F811
    bundle, out = exported
    for args, name in ((["--onnx", str(out)], "onnx.txt"), (["--checkpoint", bundle, "--decode", "nar"], "torch.txt")):
        assert lpasrn_run(["predict", *args, "--data", str(lr_only_root), "--out", str(tmp_path / name)]) == 0
    from_onnx, from_torch = read_submission(tmp_path / "onnx.txt"), read_submission(tmp_path / "torch.txt")
    assert [(p.track_id, p.text) for p in from_onnx] == [(p.track_id, p.text) for p in from_torch]
    assert [p.confidence for p in from_onnx] == pytest.approx([p.confidence for p in from_torch], rel=1e-3, abs=1e-6)


def test_an_export_folder_is_not_overwritten_without_asking(exported, capsys):
    bundle, out = exported
    assert lpasrn_run(["export", "--checkpoint", bundle, "--format", "onnx", "--out", str(out)]) == 2
    assert "exists and is not empty (use --overwrite" in capsys.readouterr().err
    assert lpasrn_run(["export", "--checkpoint", bundle, "--format", "onnx", "--out", str(out), "--overwrite"]) == 0


def test_the_onnx_ocr_cannot_decode_autoregressively(exported, lr_only_root, capsys):  # noqa: F811
    _, out = exported
    assert (
        lpasrn_run(
            [
                "predict",
                "--onnx",
                str(out),
                "--decode",
                "ar",
                "--data",
                str(lr_only_root),
                "--out",
                str(out.parent / "p.txt"),
            ]
        )
        == 2
    )
    assert "--decode ar: the ONNX OCR decodes non-autoregressively" in capsys.readouterr().err
    assert predict(load_reader(onnx_dir=out), lr_only_root, progress=False)  # and reads without it


def test_a_multi_frame_generator_exports_with_its_frame_axis_and_reads_as_in_pytorch(lr_only_root, tmp_path):  # noqa: F811
    bundle, out = tiny_bundle(tmp_path / "bundle.pt", generator_frames=3), tmp_path / "onnx"
    assert lpasrn_run(["export", "--checkpoint", bundle, "--format", "onnx", "--out", str(out)]) == 0
    assert json.loads((out / "meta.json").read_text())["generator_frames"] == 3
    for args, name in ((["--onnx", str(out)], "onnx.txt"), (["--checkpoint", bundle, "--decode", "nar"], "torch.txt")):
        assert lpasrn_run(["predict", *args, "--data", str(lr_only_root), "--out", str(tmp_path / name)]) == 0
    from_onnx, from_torch = read_submission(tmp_path / "onnx.txt"), read_submission(tmp_path / "torch.txt")
    assert [(p.track_id, p.text) for p in from_onnx] == [(p.track_id, p.text) for p in from_torch]
