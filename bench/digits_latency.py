"""Float vs full-INT8 TFLite per digit architecture: single-thread LiteRT latency and file size, side by side.

    python bench/digits_latency.py [--models digit_recognizer_v4 cnn32] [--runs 300] [--nb-classes 10] [--rgb]

Models are built untrained (latency and size do not depend on the weights' values), converted in memory and
timed one image per invoke after a warm-up, on one interpreter thread, as a microcontroller would run them.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from digits.architectures import build_model, list_models, resolve_name  # noqa: E402
from digits.cli.tables import format_table  # noqa: E402
from digits.export.tflite import float_tflite_bytes, int8_tflite_bytes  # noqa: E402
from digits.export.tflite_eval import load_interpreter  # noqa: E402
from experiments.errors import UserError  # noqa: E402


@dataclass
class Row:
    name: str
    params: int
    float_kb: float
    int8_kb: float
    float_ms: float
    int8_ms: float


def median_latency_ms(model: bytes, images: np.ndarray, runs: int, warmup: int = 20) -> float:
    """Median wall time of one invoke (input already quantised), in milliseconds."""
    interpreter = load_interpreter(model, threads=1)
    detail = interpreter.get_input_details()[0]
    if detail["dtype"] != np.float32:
        scale, zero_point = detail["quantization"]
        info = np.iinfo(detail["dtype"])
        images = np.clip(np.round(images / scale + zero_point), info.min, info.max).astype(detail["dtype"])
    times = []
    for index in range(warmup + runs):
        interpreter.set_tensor(detail["index"], images[index % len(images)][np.newaxis])
        start = time.perf_counter()
        interpreter.invoke()
        if index >= warmup:
            times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def measure(name: str, shape: tuple[int, int, int], nb_classes: int, runs: int) -> Row:
    model = build_model(name, shape, nb_classes)
    images = np.random.default_rng(0).random((32, *shape), dtype=np.float32)
    float_model = float_tflite_bytes(model)
    int8_model = int8_tflite_bytes(model, images)
    return Row(
        resolve_name(name),
        int(model.count_params()),
        len(float_model) / 1024,
        len(int8_model) / 1024,
        median_latency_ms(float_model, images, runs),
        median_latency_ms(int8_model, images, runs),
    )


def result_table(rows: list[Row]) -> str:
    header = ("architecture", "params", "float KB", "INT8 KB", "size x", "float ms", "INT8 ms", "speed x")
    return format_table(
        [header]
        + [
            (
                r.name,
                str(r.params),
                f"{r.float_kb:.1f}",
                f"{r.int8_kb:.1f}",
                f"{r.float_kb / r.int8_kb:.2f}",
                f"{r.float_ms:.3f}",
                f"{r.int8_ms:.3f}",
                f"{r.float_ms / r.int8_ms:.2f}",
            )
            for r in rows
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", help="architectures (default: every registered one)")
    parser.add_argument("--runs", type=int, default=300, help="timed invokes per model")
    parser.add_argument("--nb-classes", type=int, choices=(10, 100, 11), default=10)
    parser.add_argument("--rgb", action="store_true", help="3-channel input instead of grey")
    args = parser.parse_args(argv)
    try:
        names = [resolve_name(name) for name in args.models] if args.models else list_models()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    shape = (32, 20, 3 if args.rgb else 1)
    rows = [measure(name, shape, args.nb_classes, args.runs) for name in names]
    print(
        f"LiteRT, 1 thread, input {shape[0]}x{shape[1]}x{shape[2]}, {args.nb_classes} classes, median of "
        f"{args.runs} invokes (x = float / INT8)"
    )
    print(result_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
