"""`lpasrn` commands for the model registry: a config's models summarised, every preset listed.

Heavy modules (torch, rendering) are imported inside the handlers so `--help` stays instant.
"""

from __future__ import annotations

import argparse

from experiments.cli_common import HelpFormatter, add_config_arguments


def _cmd_model_summary(args: argparse.Namespace) -> int:
    from lpasrn.config import load_lpasrn_config
    from lpasrn.model_factory import build_generator, build_ocr
    from lpasrn.models.summary import summarize

    cfg = load_lpasrn_config(args.config, args.overrides)
    generator = build_generator(cfg.model, cfg.data.scale)
    ocr = build_ocr(cfg.ocr, pretrained=False)  # counting does not need the weights
    print(summarize(generator, ocr, cfg.ocr.model_type, cfg.data.lr_size))
    return 0


def _cmd_list_models(args: argparse.Namespace) -> int:
    from lpasrn.models.summary import registry_table

    print(registry_table(args.scale))
    return 0


def add_model_summary(sub: argparse._SubParsersAction) -> None:
    summary = sub.add_parser(
        "model-summary",
        formatter_class=HelpFormatter,
        help="parameter counts and shapes",
        description="Print parameter counts per component of the generator and the OCR, "
        "and the generator's output shape for the configured LR size.",
    )
    add_config_arguments(summary, default="lp_asrn")
    summary.set_defaults(handler=_cmd_model_summary)


def add_list_models(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser(
        "list-models",
        formatter_class=HelpFormatter,
        help="registered generators and OCRs",
        description="Print every registered generator preset and OCR, one per line, with its "
        "parameter count and settings (window, embed dim, ...).",
    )
    models.add_argument("--scale", type=int, default=2, choices=(2, 3, 4), help="the generators' up-scaling factor")
    models.set_defaults(handler=_cmd_list_models)


def add_commands(sub: argparse._SubParsersAction) -> None:
    add_model_summary(sub)
    add_list_models(sub)
