"""`digits synth`: render synthetic meter-wheel digits as a data source folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments.cli_common import HelpFormatter


def _cmd_synth(args: argparse.Namespace) -> int:
    from digits.data.synth import SynthSpec, write_dataset

    spec = SynthSpec(count=args.count, nb_classes=args.classes, channels=args.channels, seed=args.seed)
    spec.validate()
    out = write_dataset(args.out, spec, overwrite=args.overwrite)
    print(
        f"wrote {spec.count} synthetic {spec.nb_classes}-class meter digits "
        f"({spec.height}x{spec.width}, {'grey' if spec.channels == 1 else 'RGB'}) to {out} (PNG + labels.txt)"
    )
    return 0


def add_synth_parser(sub: argparse._SubParsersAction) -> None:
    synth = sub.add_parser(
        "synth",
        formatter_class=HelpFormatter,
        help="render synthetic meter-counter digits",
        description="Render rolling meter-wheel digits at 32x20 (HxW) in several fonts, with\n"
        "noise, blur, lighting and contrast changes, dark or light wheels. For 100\n"
        "classes the next digit scrolls in from below by the tenths of the reading.\n"
        "Writes OUT/labels.txt (filename<TAB>reading) and PNGs; the same seed writes\n"
        "the same bytes.",
    )
    synth.add_argument("--out", required=True, type=Path, help="output folder")
    synth.add_argument("--count", required=True, type=int, help="number of images (classes balanced)")
    synth.add_argument("--classes", type=int, default=10, help="10 (digits 0-9) or 100 (readings 0.0-9.9)")
    synth.add_argument("--channels", type=int, default=1, help="1 (grey) or 3 (RGB)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    synth.set_defaults(handler=_cmd_synth)
