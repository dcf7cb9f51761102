"""A real headless Chromium for the page tests (report.html, the web app), shared by every browser test.

Debian's Chromium (``scripts/setup_browser.sh``; ``$PERSAM_CHROMIUM`` names another) driven by Playwright's
Python package (its own browser download is not used). Without them a test is skipped locally and FAILS under
CI (``$CI`` set): a page that was never opened in a browser is not tested.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest


def chromium_path() -> str | None:
    for candidate in (os.environ.get("PERSAM_CHROMIUM"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


def unavailable(reason: str, what: str = "browser test") -> None:
    """Fail under CI, skip locally, saying why."""
    if os.environ.get("CI"):
        pytest.fail(f"the {what} cannot run under CI: {reason} (run scripts/setup_browser.sh)")
    pytest.skip(f"no headless browser: {reason} (run scripts/setup_browser.sh)")


def launch_chromium(what: str) -> Iterator:
    """Yield a launched Playwright Chromium; closed afterwards. For module-scoped ``browser`` fixtures."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable(f"the playwright package is not installed ({exc})", what)
    executable = chromium_path()
    if executable is None:
        unavailable("no Chromium found (/usr/bin/chromium, $PERSAM_CHROMIUM)", what)
    manager = sync_playwright().start()
    try:
        chromium = manager.chromium.launch(executable_path=executable, args=["--no-sandbox"])
    except Exception as exc:  # any launch failure: missing libraries, sandbox, ...
        manager.stop()
        unavailable(f"{executable} does not start ({str(exc).splitlines()[0]})", what)
    yield chromium
    chromium.close()
    manager.stop()
