"""Command-line interface: a thin shell over the library.

    persam segment --ref REF.jpg --ref-mask REF.png TARGET... -o OUT/
    persam fit --ref REF.jpg --ref-mask REF.png -o my_object.persam
    persam video clip.mp4 --ref-mask first_frame_mask.png -o masks/
    persam export-results OUT/ --export coco,report
    persam export -o models/            (the model as ONNX / OpenVINO IR)
"""

from __future__ import annotations

import sys

from ..errors import PersamError
from . import commands
from .app_command import cmd_app
from .commands import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED
from .parser import build_parser

COMMANDS = {"segment": commands.cmd_segment, "fit": commands.cmd_fit, "video": commands.cmd_video,
            "download": commands.cmd_download, "exclude": commands.cmd_exclude, "export-results": commands.cmd_export,
            "export": commands.cmd_export_model, "app": cmd_app}

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_SOME_FAILED", "build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..notices import one_line_warnings

    one_line_warnings()
    try:
        return COMMANDS[args.command_name](args, parser)
    except PersamError as exc:
        print(f"persam: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("persam: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def run_module() -> None:
    sys.exit(main())
