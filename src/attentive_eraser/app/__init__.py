"""The web app and its HTTP API: paint over an object, click Remove, compare, download.

``attentive-eraser serve`` (or :func:`serve`) starts it on 127.0.0.1. Gradio (the ``app`` extra) is imported
only when the page is built (:func:`build_app`, looked up lazily), so importing this package is cheap and
works without it.

Modules:

* :mod:`.service` — :class:`EraserService`, everything but the page: photo and mask handling, the mask
  preview, running the pipeline for several seeds with per-step progress and cancellation, writing the
  results; :class:`RemovalSettings` (one request: a model label, seeds, a
  :class:`~attentive_eraser.settings.RemovalOptions`) and :class:`RemovalRun`. Plain Python, no Gradio.
* :mod:`.requests` — the ``/remove`` parameters and their checks, seeds, the selection fields.
* :mod:`.preview` — drawing the mask preview (numpy and Pillow).
* :mod:`.ui` — :func:`build_app`, the Gradio page around the service, whose knob controls come from
  :data:`attentive_eraser.settings.KNOBS`, and the named HTTP endpoint ``/remove``.
* :mod:`.server` — :func:`check_server_options`, :func:`launch`, :func:`serve`.

What a request may name: files it uploaded (Gradio keeps them in its upload folder; the service refuses
any path outside it), one of the models the server was started with, and numbers. It never names a path
on the server; every file the app writes goes into a temporary folder of its own. One removal runs at a
time (Gradio's queue with a concurrency limit of 1, and a lock behind it), so concurrent users wait in
line instead of competing for the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .preview import PREVIEW_SIDE
from .preview import click_on_preview as _click_on_preview  # noqa: F401 (the tests' name)
from .requests import (
    ALL_PARAMETERS,
    BUILTIN_MODEL,
    MAX_SEEDS,
    OPTION_PARAMETERS,
    REMOVE_PARAMETERS,
    SELECTION_PARAMETERS,
    check_remove_request,
    parse_seeds,
    selection_of_request,
)
from .server import (
    DEFAULT_HOST,
    DEFAULT_MAX_FILE_SIZE,
    DEFAULT_PORT,
    check_server_options,
    launch,
    parse_file_size,
    serve,
)
from .service import Candidate, EraserService, RemovalRun, RemovalSettings

if TYPE_CHECKING:  # pragma: no cover
    from .ui import build_app

__all__ = [
    "ALL_PARAMETERS",
    "BUILTIN_MODEL",
    "DEFAULT_HOST",
    "DEFAULT_MAX_FILE_SIZE",
    "DEFAULT_PORT",
    "MAX_SEEDS",
    "OPTION_PARAMETERS",
    "PREVIEW_SIDE",
    "REMOVE_PARAMETERS",
    "SELECTION_PARAMETERS",
    "Candidate",
    "EraserService",
    "RemovalRun",
    "RemovalSettings",
    "build_app",
    "check_remove_request",
    "check_server_options",
    "launch",
    "parse_file_size",
    "parse_seeds",
    "selection_of_request",
    "serve",
]


def __getattr__(name: str) -> Any:
    """``build_app`` on first use: it imports Gradio."""
    if name == "build_app":
        from .ui import build_app

        globals()["build_app"] = build_app
        return build_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
