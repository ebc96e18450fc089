"""The browser tier: Chromium driven by Playwright against pytest-django's live_server.

A missing Chromium or wlmscpfs fails these tests with a clear message; they are never skipped, so a
green run always means the browser really did the work.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from django.conf import settings

# Playwright's sync API runs an asyncio loop in this thread; Django then refuses synchronous database
# calls from it. The test thread only reads and writes through the ORM between browser steps, never
# concurrently with the loop, so the guard can be lifted for this tier.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from tests.interop.conftest import (  # noqa: F401  (fixtures shared with the interop tier)
    wlmscpfs,
    wlmscpfs_server,
)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found and Path("/usr/bin/chromium").is_file():
        found = "/usr/bin/chromium"
    if not found:
        pytest.fail("Chromium is not installed; the e2e tests need it (apt-get install chromium).")
    return found


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed in the virtualenv (pip install -r requirements-dev.txt).")
    with sync_playwright() as playwright:
        # Debian's Chromium, never a downloaded one: `playwright install` is not part of the set-up.
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url,
        locale="en-GB",
        timezone_id=settings.TIME_ZONE,
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def artifacts_root() -> Path:
    return Path(settings.BASE_DIR) / "test-artifacts" / "e2e" / datetime.now().strftime("%Y%m%d-%H%M%S")


@pytest.fixture
def shoot(page, artifacts_root, request, capsys):
    """shoot("step-name") saves a full-page screenshot as NN-step-name.png in this run's folder."""
    folder = artifacts_root / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    taken = []

    def take(name: str) -> Path:
        path = folder / f"{len(taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        taken.append(path)
        return path

    yield take
    with capsys.disabled():
        print(f"\n[e2e] {len(taken)} screenshots in {folder}")


@pytest.fixture
def fast_board(monkeypatch):
    """The day board refreshes every second instead of every 20, so a test sees it happen quickly."""
    monkeypatch.setattr("scheduling.views.BOARD_REFRESH_SECONDS", 1)
