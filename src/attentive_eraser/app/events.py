"""Wiring the page's events to its :class:`~attentive_eraser.app.handlers.Handlers`.

Light events (previews, photo loads, clicks) are never queued behind a removal; decoding ones (reading a
photo, drawing the preview) run a few at a time in their own group; the removal is the queued ``/remove``
endpoint.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from ..settings import KNOB_NAMES
from .handlers import Handlers, remove_endpoint
from .layout import FAST_KNOB_NAMES, METHOD_KNOBS, Page
from .requests import ALL_PARAMETERS, SELECTION_PARAMETERS

#: photo loads and mask previews that may decode uploads at the same time (each holds a full photo)
PREVIEW_CONCURRENCY = 1
#: the knobs the mask preview draws with
PREVIEW_KNOBS = ("mask_dilation", "feather_radius", "resolution")
#: options of the page's light events: previews, photo loads, clicks (never queued behind removals)
_LIGHT: dict[str, Any] = {"concurrency_limit": None, "api_visibility": "private", "show_progress": "hidden"}
# Reading a photo and drawing the preview decode the whole upload: a few at once, not one per click, and
# in their own group, so they never wait behind a removal.
_DECODING: dict[str, Any] = {**_LIGHT, "concurrency_limit": PREVIEW_CONCURRENCY, "concurrency_id": "decode"}


def wire_preview(page: Page, handlers: Handlers) -> None:
    """Photo loading, examples, the mask preview and its clicks."""
    page.photo.change(handlers.show_photo, page.photo, page.editor, **_DECODING)
    page.example_gallery.select(handlers.pick_example, None, [page.photo, page.mask_upload], **_LIGHT)
    sources = [
        page.photo,
        page.editor,
        page.mask_upload,
        page.model,
        *page.knob_list(PREVIEW_KNOBS),
        page.strategy,
        page.paste_back,
        page.clicked,
        page.excluded,
    ]
    triggers = [source.change for source in sources] + [page.object_text.submit]
    gr.on(
        triggers,
        handlers.update_preview,
        [*sources, page.object_text],
        [page.preview, page.preview_info],
        trigger_mode="always_last",
        **_DECODING,
    )
    page.preview.select(
        handlers.add_click,
        [page.photo, page.clicked, page.excluded, page.click_mode],
        [page.clicked, page.excluded],
        **_LIGHT,
    )
    page.clear_clicks.click(lambda: ("", ""), None, [page.clicked, page.excluded], **_LIGHT)
    page.photo.change(lambda: ("", "", ""), None, [page.clicked, page.excluded, page.object_text], **_LIGHT)


def wire_knobs(page: Page, handlers: Handlers) -> None:
    """A new model resets every knob to its preset; a new method or the Fast toggle the knobs they decide."""
    choice = [page.model, page.method, page.fast]
    page.model.input(handlers.model_defaults, choice, page.knob_list(KNOB_NAMES), **_LIGHT)
    page.method.input(handlers.method_defaults, choice, page.knob_list(METHOD_KNOBS), **_LIGHT)
    page.fast.input(handlers.fast_defaults, choice, page.knob_list(FAST_KNOB_NAMES), **_LIGHT)


def remove_inputs(page: Page) -> list[Any]:
    """The components of ``/remove``'s parameters, in the order of :data:`requests.ALL_PARAMETERS`."""
    by_name = {
        "image": page.photo,
        "mask": page.mask_used,
        "model": page.model,
        "method": page.method,
        "seeds": page.seeds,
        "paste_back": page.paste_back,
        "strategy": page.strategy,
        "fast": page.api_fast,
        **dict(zip(SELECTION_PARAMETERS, page.api_selection, strict=True)),
        **page.knobs,
    }
    return [by_name[name] for name in ALL_PARAMETERS]


def wire_removal(page: Page, handlers: Handlers) -> None:
    """Remove (mask first, then the queued removal: the ``/remove`` endpoint), Cancel, picking a candidate."""
    selection = [page.photo, page.editor, page.mask_upload, page.clicked, page.excluded, page.object_text]
    page.remove_button.click(handlers.prepare, selection, page.mask_used, **_LIGHT).success(
        remove_endpoint(handlers),
        remove_inputs(page),
        [page.gallery, page.comparison, page.download, page.status, page.candidates],
        api_name="remove",
        show_progress_on=[page.comparison, page.status],
    )
    page.cancel_button.click(handlers.cancel, None, page.status, queue=False, api_name="cancel")
    page.gallery.select(
        handlers.pick, page.candidates, [page.comparison, page.download, page.status], **_LIGHT
    )
