"""Errors persam reports to users.

Every user-facing failure is a :class:`PersamError` whose message is one line that names the file and
the problem; the CLI prints it and exits non-zero instead of showing a traceback.
"""

from __future__ import annotations


class PersamError(Exception):
    """Base class: a problem the user can fix, described in one line."""


class InputError(PersamError):
    """An input file (image, mask, video, concept) is missing, unreadable or unsuitable."""


class CheckpointError(PersamError):
    """Model weights could not be found, downloaded or verified."""
