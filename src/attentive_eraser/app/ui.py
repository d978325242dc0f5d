"""The Gradio page around an :class:`~attentive_eraser.app.service.EraserService`, and its HTTP API.

:func:`build_app` lays out the page (:mod:`.layout`: :func:`photo_column`, :func:`preview_column`,
:func:`results_row`), then wires its events (:mod:`.events`) to the :class:`Handlers` (:mod:`.handlers`).
The knob controls are derived from :data:`attentive_eraser.settings.KNOBS` (:func:`knob_control`): a
numeric knob is a slider over its ``slider`` range, a knob with choices a radio group; each shows the
knob's label and help. The named endpoint ``/remove`` takes
:data:`~attentive_eraser.app.requests.ALL_PARAMETERS`, checked by :class:`CheckedBlocks` before Gradio
reads them.

Importing this module imports Gradio; ``attentive_eraser.app`` imports it only when :func:`build_app` is
first asked for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder

from .. import imaging
from ..settings import DEFAULT_SEED, KNOB_NAMES
from .events import (
    PREVIEW_CONCURRENCY,
    PREVIEW_KNOBS,
    remove_inputs,
    wire_knobs,
    wire_preview,
    wire_removal,
)
from .handlers import (
    Handlers,
    layers_of,
    outputs_of_run,
    remove_endpoint,
    session_of,
    user_errors,
)
from .layout import (
    FAST_KNOB_NAMES,
    INTRO,
    METHOD_KNOBS,
    Page,
    elem_id_of,
    knob_control,
    knob_rows,
    photo_column,
    preview_column,
    results_row,
    selection_group,
    settings_panel,
)
from .requests import ALL_PARAMETERS, MAX_SEEDS, check_remove_request, completed_request, shown
from .service import EraserService

__all__ = [
    "FAST_KNOB_NAMES",
    "METHOD_KNOBS",
    "PREVIEW_CONCURRENCY",
    "PREVIEW_KNOBS",
    "CheckedBlocks",
    "Handlers",
    "Page",
    "build_app",
    "elem_id_of",
    "example_pairs",
    "initial_values",
    "knob_control",
    "knob_rows",
    "layers_of",
    "outputs_of_run",
    "photo_column",
    "preview_column",
    "remove_endpoint",
    "remove_inputs",
    "results_row",
    "selection_group",
    "session_of",
    "settings_panel",
    "user_errors",
    "wire_knobs",
    "wire_preview",
    "wire_removal",
]


def example_pairs(folder: Path) -> list[tuple[str, str, str]]:
    """Copy the bundled examples into ``folder`` (the web framework serves files from there only).

    Returns ``(photo, mask, name)`` triples.
    """
    source = resources.files("attentive_eraser") / "assets" / "examples"
    pairs = []
    folder.mkdir(parents=True, exist_ok=True)
    for item in sorted(source.iterdir(), key=lambda entry: entry.name):
        name = item.name
        if "_mask" in name or Path(name).suffix.lower() not in imaging.SAVE_FORMATS:
            continue
        mask = source / f"{Path(name).stem}_mask.png"
        if not mask.is_file():
            continue
        photo_copy, mask_copy = folder / name, folder / mask.name
        photo_copy.write_bytes(item.read_bytes())
        mask_copy.write_bytes(mask.read_bytes())
        pairs.append((str(photo_copy), str(mask_copy), Path(name).stem))
    return pairs


def initial_values(service: EraserService, defaults: Mapping[str, Any] | None) -> dict[str, Any]:
    """The page's initial values (and the API's defaults): the default model's preset, then ``defaults``."""
    given = dict(defaults or {})
    unknown = set(given) - {*KNOB_NAMES, "method", "seeds", "paste_back", "strategy", "fast"}
    if unknown:
        raise ValueError(f"defaults={sorted(unknown)!r} are not knobs of the app")
    method, fast = given.get("method", "sip"), bool(given.get("fast", False))
    return {
        "method": "sip",
        "seeds": str(DEFAULT_SEED),
        "paste_back": True,
        "strategy": "resize",
        "fast": False,
        **service.knob_defaults(service.default_model, method, fast=fast),
        **given,
    }


class CheckedBlocks(gr.Blocks):
    """Blocks whose ``/remove`` requests are checked, raw, before Gradio processes them.

    Gradio's own failures (a refused path, text for a number, a missing value) reach the client as an
    error without a message; checked first, each names the parameter and the value instead. The optional
    trailing parameters a request leaves out get their defaults (:func:`requests.completed_request`).
    """

    eraser_service: EraserService
    initial: dict[str, Any]

    async def preprocess_data(self, block_fn: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(block_fn, "api_name", None) != "remove":
            return await super().preprocess_data(block_fn, inputs, *args, **kwargs)
        with user_errors():
            check_remove_request(self.eraser_service, list(inputs or []))
        inputs = completed_request(list(inputs), self.initial)
        try:
            return await super().preprocess_data(block_fn, inputs, *args, **kwargs)
        except gr.Error:
            raise
        except Exception as error:
            found = re.search(r"at index (\d+)", str(error))
            index = int(found.group(1)) if found else -1
            name = ALL_PARAMETERS[index] if 0 <= index < len(ALL_PARAMETERS) else "data"
            value = shown(inputs[index]) if 0 <= index < len(inputs) else "the request"
            message = f"{name}: {value} could not be read ({type(error).__name__})"
            raise gr.Error(message, print_exception=False) from error


def build_app(
    models: Sequence[str | None] = (None,),
    *,
    device: str | None = None,
    dtype: str | None = None,
    max_seeds: int = MAX_SEEDS,
    queue_size: int = 16,
    defaults: Mapping[str, Any] | None = None,
    service: EraserService | None = None,
    segmenter: str | None = None,
) -> gr.Blocks:
    """The Gradio page (and its HTTP API) around an :class:`EraserService`.

    ``models``: what the page offers (``None`` = the embedded default); the first is selected.
    ``defaults`` overrides initial knob values (``num_inference_steps``, ``seeds``, ``method``, ``fast``,
    …). Launch it with :func:`launch`, which sets the upload size limit; the queue (one removal at a
    time, at most ``queue_size`` waiting) is set up here. ``segmenter`` turns clicks and words into
    masks (a spec of :func:`attentive_eraser.selection.load_segmenter`; default ``classic``).
    """
    service = service or EraserService(
        models, device=device, dtype=dtype, max_seeds=max_seeds, segmenter=segmenter
    )
    initial = initial_values(service, defaults)
    service.allow_root(get_upload_folder())
    examples = example_pairs(service.workdir / "examples")
    page, handlers = Page(), Handlers(service, examples, initial)
    with CheckedBlocks(title="Attentive Eraser", analytics_enabled=False, delete_cache=(1800, 3600)) as app:
        gr.Markdown(INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                photo_column(page, examples)
            with gr.Column(scale=1):
                preview_column(page, service, initial)
        results_row(page)
        wire_preview(page, handlers)
        wire_knobs(page, handlers)
        wire_removal(page, handlers)
    app.eraser_service, app.initial = service, initial  # for the request checks, callers and tests
    app.queue(default_concurrency_limit=1, max_size=queue_size)
    return app
