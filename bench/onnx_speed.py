"""Plates per second on the CPU: PyTorch against ONNX Runtime, reading LR plates with the generator and the OCR.

    python bench/onnx_speed.py [--checkpoint BUNDLE | --config lp_asrn_cpu --ocr slot_cnn] [--batch 1 32]
                               [--threads 1] [--seconds 5]

A plate is one LR frame through the generator and the OCR (decoding as exported: the slot CNN's seven classifiers,
PARSeq non-autoregressively with its refinement rounds), so both backends do the same work. Without --checkpoint the
models of the preset are randomly initialised (speed does not depend on the weights) and exported to a temporary
folder. Each row repeats its batch for --seconds after one untimed warm-up call; the ratio is ONNX Runtime's
plates/s over PyTorch's at the same batch size.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from lpasrn.config import load_lpasrn_config  # noqa: E402
from lpasrn.inference.bundle import export_bundle  # noqa: E402
from lpasrn.inference.deploy import export_onnx  # noqa: E402
from lpasrn.inference.onnx_reader import OnnxPlateReader  # noqa: E402
from lpasrn.inference.prediction import load_reader  # noqa: E402
from lpasrn.model_factory import build_generator, build_ocr  # noqa: E402


def random_bundle(config: str, ocr: str | None, folder: Path) -> str:
    cfg = load_lpasrn_config(config, [f"ocr.model_type={ocr}"] if ocr else [])
    torch.manual_seed(0)
    state = {
        "generator": build_generator(cfg.model, cfg.data.scale).state_dict(),
        "ocr": build_ocr(cfg.ocr, pretrained=False).state_dict(),
        "stage": 4,
        "epoch": 0,
    }
    return export_bundle(state, cfg, folder / "bundle.pt")


def plates_per_second(reader, lr: torch.Tensor, seconds: float) -> tuple[float, float]:
    """(ms per batch, plates/s) over at least `seconds` and at least three calls."""
    reader.token_logits(lr)  # warm-up: allocations, ONNX Runtime's first-run graph work
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < seconds:
        reader.token_logits(lr)
        calls += 1
    elapsed = time.perf_counter() - start
    return elapsed / calls * 1e3, calls * len(lr) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="inference bundle to time (default: random weights of --config)")
    parser.add_argument("--config", default="lp_asrn_cpu", help="preset whose models are timed without --checkpoint")
    parser.add_argument("--ocr", help="override ocr.model_type of --config (slot_cnn, parseq_tiny, ...)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 32], help="batch sizes (plates per call)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for both backends")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per row")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        bundle = args.checkpoint or random_bundle(args.config, args.ocr, Path(scratch))
        report = export_onnx(bundle, Path(scratch) / "onnx")
        backends = {
            "PyTorch": load_reader(bundle, decode="nar"),
            "ONNX Runtime": OnnxPlateReader(report.folder, threads=args.threads),
        }
        meta = backends["ONNX Runtime"].meta
        print(
            f"{meta['ocr_model_type']} OCR ({meta['ocr_decoding']}), generator x{meta['scale']} from "
            f"{meta['lr_size'][0]}x{meta['lr_size'][1]}; CPU, {args.threads} thread(s); "
            f"max logit difference {report.max_logit_difference:.1e}"
        )
        print(f"{'backend':<14} {'batch':>5} {'ms/batch':>10} {'plates/s':>10} {'vs PyTorch':>11}")
        for batch in args.batch:
            lr = torch.rand(batch, 3, *meta["lr_size"], generator=torch.Generator().manual_seed(batch))
            rows = {name: plates_per_second(reader, lr, args.seconds) for name, reader in backends.items()}
            for name, (ms, rate) in rows.items():
                print(f"{name:<14} {batch:>5} {ms:>10.2f} {rate:>10.1f} {rate / rows['PyTorch'][1]:>10.2f}x")


if __name__ == "__main__":
    main()
