"""Run the web app inside the test process on a free 127.0.0.1 port (tiny default model, few steps)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

try:
    import gradio  # noqa: F401
except ImportError as error:  # the app tests are part of the suite: say how to get them running
    raise ImportError(
        "the web app tests need the app extra: run scripts/setup.sh (pip install -e '.[test,app]')"
    ) from error

from attentive_eraser.app import build_app, launch

#: Debian's Chromium, driven by Playwright (never `playwright install`, which downloads a browser)
CHROMIUM = os.environ.get("ATTENTIVE_ERASER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

#: how long a page event may take (page load on a busy 2-core machine included)
WAIT_MS = 60_000

#: knob values that keep every removal well under a second with the tiny model; the screenshot for the docs
#: (ATTENTIVE_ERASER_SCREENSHOT set) shows the model's own preset instead
FAST: dict[str, Any] = {} if os.environ.get("ATTENTIVE_ERASER_SCREENSHOT") else {"num_inference_steps": 8}


def free_port() -> int:
    """A TCP port that nothing listens on right now (on 127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def chromium() -> Iterator[Any]:
    """A Playwright ``BrowserContext`` of headless Chromium, fresh profile folder, downloads allowed."""
    import tempfile

    import pytest
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/setup.sh --test (it installs Debian's chromium), "
            "or point ATTENTIVE_ERASER_CHROMIUM at a Chromium binary"
        )
    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
            accept_downloads=True,
        )
        try:
            yield context
        finally:
            context.close()


def wait_text(page: Any, selector: str, text: str) -> str:
    """Wait until the element ``selector`` shows ``text``; return its text."""
    page.wait_for_function(
        "([selector, text]) => { const node = document.querySelector(selector);"
        " return node !== null && node.innerText.includes(text); }",
        arg=[selector, text],
        timeout=WAIT_MS,
    )
    return page.locator(selector).inner_text()


@contextmanager
def running_app(max_file_size: str = "20mb", **build_kwargs: Any) -> Iterator[tuple[Any, str]]:
    """``(app, url)`` of the app serving on 127.0.0.1 until the block ends."""
    build_kwargs.setdefault("defaults", FAST)
    app = build_app(**build_kwargs)
    url = launch(app, port=free_port(), max_file_size=max_file_size, block=False, quiet=True)
    try:
        yield app, url.rstrip("/")
    finally:
        app.close()
