"""One-line notices for things a user should know that are not errors (a resized mask, a huge photo).

The library raises them as :class:`PersamWarning` through :mod:`warnings`, so library users filter or
catch them as usual. Shells (the CLI, the app) call :func:`one_line_warnings` so that every warning --
ours, Pillow's DecompressionBombWarning, PyTorch's -- reaches the person as one line without a source
line or a traceback.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import TextIO


class PersamWarning(UserWarning):
    """Something worth telling the user about their input; the run goes on."""


def notice(message: str) -> None:
    """Tell the user one line (through :mod:`warnings`, category :class:`PersamWarning`)."""
    warnings.warn(" ".join(message.split()), PersamWarning, stacklevel=2)


def one_line_warnings(prefix: str = "persam: warning: ", stream: TextIO | None = None,
                      write: Callable[[str], None] | None = None) -> None:
    """Show every warning of this process as ``prefix + message`` on one line (stderr by default)."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG001
        text = prefix + " ".join(str(message).split())
        if write is not None:
            write(text)
        else:
            print(text, file=stream or sys.stderr)

    warnings.showwarning = show
    warnings.simplefilter("default")
