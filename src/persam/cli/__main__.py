"""``python -m persam.cli``."""

from . import run_module

run_module()
