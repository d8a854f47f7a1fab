"""Debian's Chromium driven by Playwright, for the console's browser tests.

Playwright's own browser builds are never downloaded: the tests launch
/usr/bin/chromium (Debian's package ``chromium``), which ``scripts/test``
installs when it is missing.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
DESKTOP = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}


def missing_browser() -> str | None:
    """Say why the browser tests cannot run here, or return None when they can."""
    if not CHROMIUM.exists():
        return (
            f"{CHROMIUM} not found: install Debian's chromium package "
            "(bash scripts/test does so when it runs as root or with sudo)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[test]'"
    return None


def launch_chromium(
    playwright: Playwright, user_data_dir: Path, *, viewport: dict[str, int] = DESKTOP
) -> BrowserContext:
    """Launch Chromium with a fresh profile in ``user_data_dir``."""
    if user_data_dir.exists():
        shutil.rmtree(user_data_dir)
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=str(CHROMIUM),
        headless=True,
        args=list(CHROMIUM_ARGS),
        viewport=viewport,  # type: ignore[arg-type]
        locale="en-US",
        timezone_id="UTC",
    )
