"""The Gradio page around an :class:`~attentive_eraser.app.service.EraserService`, and its HTTP API.

:func:`build_app` lays out the page (:func:`photo_column`, :func:`settings_panel`, :func:`results_row`),
then wires its events to the :class:`Handlers`. The knob controls are derived from
:data:`attentive_eraser.settings.KNOBS` (:func:`knob_control`): a numeric knob is a slider over its
``slider`` range, a knob with choices a radio group; each shows the knob's label and help. The named
endpoint ``/remove`` takes :data:`~attentive_eraser.app.requests.ALL_PARAMETERS`.

Importing this module imports Gradio; ``attentive_eraser.app`` imports it only when :func:`build_app` is
first asked for.
"""

# No ``from __future__ import annotations`` here: Gradio reads the event handlers' annotations
# (gr.Request, gr.SelectData) at run time, with typing.get_type_hints.
import inspect
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder
from PIL import Image

from .. import imaging
from ..selection import SelectionRequest
from ..settings import FAST_KNOBS, KNOB_NAMES, KNOBS, Knob, Method, preset_field_names
from .preview import click_on_preview
from .requests import (
    ALL_PARAMETERS,
    MAX_SEEDS,
    SELECTION_PARAMETERS,
    check_remove_request,
    completed_request,
    selection_of_request,
    shown,
)
from .service import EraserService, RemovalRun, RemovalSettings

#: photo loads and mask previews that may decode uploads at the same time (each holds a full photo)
PREVIEW_CONCURRENCY = 1
#: the knobs the mask preview draws with
PREVIEW_KNOBS = ("mask_dilation", "feather_radius", "resolution")
#: knobs whose default depends on the method: a preset's ``dip_<knob>`` fields and the fast values
METHOD_KNOBS = tuple(
    name
    for name in KNOB_NAMES
    if f"dip_{name}" in preset_field_names() or any(name in values for values in FAST_KNOBS.values())
)
#: knobs the Fast toggle sets (for either method)
FAST_KNOB_NAMES = tuple(name for name in KNOB_NAMES if any(name in values for values in FAST_KNOBS.values()))
#: element ids the page had before its controls were derived from the schema (kept for scripts and
#: tests); any other knob's id is its name with dashes
_ELEM_IDS = {
    "num_inference_steps": "steps",
    "removal_guidance_scale": "guidance",
    "suppression_scale": "suppression",
    "mask_dilation": "dilation",
    "feather_radius": "feather",
}
#: help of the controls that are not knobs (the knobs' is theirs, in settings.KNOBS)
_HELP = {
    "model": "Weights the server was started with (attentive-eraser serve --model …). "
    "Changing it resets the knobs below to its preset.",
    "method": "SIP: stochastic inpainting (blended latent diffusion), one result per seed. "
    "DIP: deterministic, from a DDIM inversion of the photo; seeds are ignored.",
    "seeds": "SIP's noise seeds, separated by commas: one candidate per seed, computed together as one "
    "batch (at most {max_seeds}).",
    "fast": "Fewer UNet evaluations: sets {knobs} to the fast values for the method (what is shown is "
    "what runs; move them afterwards as you like). Unticked: the model's preset again.",
    "paste_back": "Keep the original pixels outside the (feathered) mask; off = the raw decode everywhere.",
    "strategy": "resize: process the whole photo at the working resolution. crop: only a window around the "
    "mask (2× its box), pasted back at full resolution — for large photos with small objects.",
}
_BRUSH_COLOUR = ("#ff2d55", 0.55)
#: options of the page's light events: previews, photo loads, clicks (never queued behind removals)
_LIGHT: dict[str, Any] = {"concurrency_limit": None, "api_visibility": "private", "show_progress": "hidden"}
# Reading a photo and drawing the preview decode the whole upload: a few at once, not one per click, and
# in their own group, so they never wait behind a removal.
_DECODING: dict[str, Any] = {**_LIGHT, "concurrency_limit": PREVIEW_CONCURRENCY, "concurrency_id": "decode"}


def elem_id_of(knob: Knob) -> str:
    """The page element id of a knob's control (``steps``, ``suppression-steps``, ``scheduler``, …)."""
    return _ELEM_IDS.get(knob.name, knob.name.replace("_", "-"))


@contextmanager
def user_errors() -> Iterator[None]:
    """Show the package's input errors (a ValueError naming the argument) as a message in the page."""
    try:
        yield
    except ValueError as error:
        raise gr.Error(str(error), print_exception=False) from error


def session_of(request: gr.Request | None) -> str:
    return str(getattr(request, "session_hash", None) or "")


def layers_of(editor: dict[str, Any] | None) -> list[Image.Image]:
    return [layer for layer in (editor or {}).get("layers") or [] if layer is not None]


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
        "seeds": "123",
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


# --------------------------------------------------------------------------------------------------
# The layout


@dataclass
class Page:
    """The page's components by role, filled in by the layout functions."""

    photo: Any = None
    editor: Any = None
    click_mode: Any = None
    clicked: Any = None
    excluded: Any = None
    object_text: Any = None
    clear_clicks: Any = None
    mask_upload: Any = None
    example_gallery: Any = None
    preview: Any = None
    preview_info: Any = None
    model: Any = None
    method: Any = None
    seeds: Any = None
    fast: Any = None
    #: the knob controls, by knob name, in the order of settings.KNOBS
    knobs: dict[str, Any] = field(default_factory=dict)
    paste_back: Any = None
    strategy: Any = None
    remove_button: Any = None
    cancel_button: Any = None
    status: Any = None
    comparison: Any = None
    gallery: Any = None
    download: Any = None
    mask_used: Any = None
    candidates: Any = None
    #: /remove's selection fields and fast flag for HTTP clients; the page puts its selection into the mask
    #: and its fast values into the knobs instead
    api_selection: list[Any] = field(default_factory=list)
    api_fast: Any = None

    def knob_list(self, names: Sequence[str]) -> list[Any]:
        return [self.knobs[name] for name in names]


def knob_control(knob: Knob, value: Any) -> Any:
    """The control of one knob: a slider over its ``slider`` range, or a radio group of its choices."""
    label = knob.label or knob.name
    if knob.choices:
        return gr.Radio(
            list(knob.choices), value=value, label=label, info=knob.help, elem_id=elem_id_of(knob)
        )
    step: float | None
    if knob.slider is not None:
        low, high, step = knob.slider
    else:  # a knob without a page range: its whole valid one
        assert knob.low is not None and knob.high is not None
        low, high, step = knob.low, knob.high, (1 if knob.whole else None)
    return gr.Slider(low, high, value=value, step=step, label=label, info=knob.help, elem_id=elem_id_of(knob))


def selection_group(page: Page) -> None:
    """Clicks on the preview (add / exclude), their text boxes, and the object in words."""
    with gr.Group(elem_id="selection"):
        page.click_mode = gr.Radio(
            [("add to the object", "points"), ("exclude (keep)", "exclude")],
            value="points",
            label="…or click the object on the mask preview: clicks",
            elem_id="click-mode",
        )
        with gr.Row():
            page.clicked = gr.Textbox(label="Object clicks (x,y; …)", elem_id="points", max_lines=1)
            page.excluded = gr.Textbox(label="Excluded clicks", elem_id="exclude", max_lines=1)
        with gr.Row():
            page.object_text = gr.Textbox(
                label="…or the object to remove, in words (Enter)",
                elem_id="object",
                max_lines=1,
                placeholder="the red car (needs a server started with a detector)",
            )
            page.clear_clicks = gr.Button("Clear clicks", size="sm", elem_id="clear-clicks")


def photo_column(page: Page, examples: Sequence[tuple[str, str, str]]) -> None:
    """Steps 1 and 2: the photo, the brush, the selection, a mask upload, the examples."""
    page.photo = gr.File(label="1. Photo", file_types=["image"], type="filepath", elem_id="photo")
    page.editor = gr.ImageEditor(
        label="2. Paint over the object (brush / eraser; size: the ◎ tool)",
        type="pil",
        image_mode="RGBA",
        format="png",
        sources=(),
        transforms=(),
        layers=False,
        brush=gr.Brush(default_size="auto", colors=[_BRUSH_COLOUR], color_mode="fixed"),
        eraser=gr.Eraser(default_size="auto"),
        height=420,
        elem_id="editor",
        placeholder="Upload a photo above (or pick an example below), then paint here.",
    )
    selection_group(page)
    page.mask_upload = gr.File(
        label="…or upload a mask (white = remove; painted strokes are added to it)",
        file_types=["image"],
        type="filepath",
        elem_id="mask-upload",
    )
    page.example_gallery = gr.Gallery(
        value=[(photo_path, name) for photo_path, _, name in examples],
        label="Examples: click one",
        columns=3,
        height=140,
        allow_preview=False,
        object_fit="contain",
        elem_id="examples",
        interactive=False,
        buttons=[],
    )


def knob_rows(page: Page, initial: Mapping[str, Any], per_row: int = 3) -> None:
    """The Fast toggle beside the choice knobs, then the numeric knobs' sliders, ``per_row`` a row."""
    fast_names = ", ".join(knob.label or knob.name for knob in KNOBS if knob.name in FAST_KNOB_NAMES)
    with gr.Row():
        page.fast = gr.Checkbox(
            value=bool(initial["fast"]),
            label="Fast",
            info=_HELP["fast"].format(knobs=fast_names),
            elem_id="fast",
        )
        for knob in KNOBS:
            if knob.choices:
                page.knobs[knob.name] = knob_control(knob, initial[knob.name])
    numeric = [knob for knob in KNOBS if not knob.choices]
    for start in range(0, len(numeric), per_row):
        with gr.Row():
            for knob in numeric[start : start + per_row]:
                page.knobs[knob.name] = knob_control(knob, initial[knob.name])
    page.knobs = {name: page.knobs[name] for name in KNOB_NAMES}  # the schema's order


def settings_panel(page: Page, service: EraserService, initial: Mapping[str, Any]) -> None:
    """Model, method, seeds, Fast, every knob of the schema, paste-back and strategy."""
    with gr.Accordion("Settings", open=True):
        with gr.Row():
            page.model = gr.Dropdown(
                service.model_labels,
                value=service.default_model,
                label="Model",
                info=_HELP["model"],
                elem_id="model",
            )
            page.method = gr.Radio(
                [("SIP (stochastic)", "sip"), ("DIP (deterministic)", "dip")],
                value=initial["method"],
                label="Method",
                info=_HELP["method"],
                elem_id="method",
            )
        page.seeds = gr.Textbox(
            value=str(initial["seeds"]),
            label="Seeds",
            info=_HELP["seeds"].format(max_seeds=service.max_seeds),
            elem_id="seeds",
        )
        knob_rows(page, initial)
        with gr.Row():
            page.paste_back = gr.Checkbox(
                value=initial["paste_back"],
                label="Paste back",
                info=_HELP["paste_back"],
                elem_id="paste-back",
            )
            page.strategy = gr.Radio(
                ["resize", "crop"],
                value=initial["strategy"],
                label="Strategy",
                info=_HELP["strategy"],
                elem_id="strategy",
            )


def preview_column(page: Page, service: EraserService, initial: Mapping[str, Any]) -> None:
    """Step 3: the mask preview, the settings, Remove and Cancel, the status line."""
    page.preview = gr.Image(
        label="Mask preview (click it to select): red mask · yellow dilation · blue paste-back",
        type="pil",
        format="png",
        interactive=False,
        height=300,
        elem_id="preview",
    )
    page.preview_info = gr.Markdown(elem_id="preview-info")
    settings_panel(page, service, initial)
    with gr.Row():
        page.remove_button = gr.Button("3. Remove", variant="primary", elem_id="remove")
        page.cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel")
    page.status = gr.Markdown(label="Status", elem_id="status")


def results_row(page: Page) -> None:
    """Step 4: before/after, the candidates, the download, the mask used; and the API-only inputs."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            page.comparison = gr.ImageSlider(
                label="Before / after",
                type="filepath",
                interactive=False,
                elem_id="comparison",
                max_height=600,
            )
        with gr.Column(scale=1):
            page.gallery = gr.Gallery(
                label="Candidates",
                columns=4,
                fit_columns=False,
                height="auto",
                allow_preview=False,
                object_fit="contain",
                interactive=False,
                elem_id="candidates",
            )
            page.download = gr.DownloadButton("Download the result", variant="primary", elem_id="download")
            page.mask_used = gr.File(label="Mask used", interactive=False, elem_id="mask-used")
    page.candidates = gr.State([])
    page.api_selection = [gr.Textbox(value="", visible=False) for _ in SELECTION_PARAMETERS]
    page.api_fast = gr.Checkbox(value=False, visible=False, label="Fast")


# --------------------------------------------------------------------------------------------------
# The events


class Handlers:
    """The page's event handlers, around one service (bound methods: Gradio names each event after one)."""

    def __init__(
        self, service: EraserService, examples: Sequence[tuple[str, str, str]], initial: Mapping[str, Any]
    ) -> None:
        self.service = service
        self.examples = list(examples)
        self.initial = dict(initial)

    # ---- loading and previewing (light, not serialised behind removals)
    def show_photo(self, image: str | None) -> Any:
        if image is None:
            return None
        with user_errors():
            return self.service.load_photo(image).picture

    def pick_example(self, event: gr.SelectData) -> tuple[str, str]:
        photo_path, mask_path, _ = self.examples[event.index]
        return photo_path, mask_path

    def update_preview(
        self,
        image: str | None,
        editor_value: dict[str, Any] | None,
        upload: str | None,
        model_label: str,
        dilation_px: float,
        feather_px: float,
        resolution_px: float,
        strategy_name: str,
        paste: bool,
        points: str = "",
        exclude: str = "",
        words: str = "",
    ) -> tuple[Any, str]:
        with user_errors():
            selection = SelectionRequest.parse(
                points or "", exclude or "", None, words, names=("points", "exclude", "box")
            )
            return self.service.preview(
                image,
                layers_of(editor_value),
                upload,
                model=model_label,
                mask_dilation=int(dilation_px),
                feather_radius=float(feather_px),
                resolution=int(resolution_px),
                strategy="crop" if strategy_name == "crop" else "resize",
                paste_back=bool(paste),
                selection=selection,
            )

    def add_click(
        self, image: str | None, points: str, exclude: str, mode: str, event: gr.SelectData
    ) -> tuple[str, str]:
        if image is None or event.index is None:
            return points, exclude
        with user_errors():
            x, y = click_on_preview(event.index, self.service.load_photo(image).picture.size)
        if mode == "exclude":
            return points, "; ".join(part for part in ((exclude or "").strip(), f"{x},{y}") if part)
        return "; ".join(part for part in ((points or "").strip(), f"{x},{y}") if part), exclude

    # ---- knob defaults: a model, a method or the Fast toggle resets the knobs it decides
    def _defaults(self, model_label: str, method_name: str, fast: bool, names: Sequence[str]) -> list[Any]:
        method: Method = "dip" if method_name == "dip" else "sip"
        with user_errors():
            values = self.service.knob_defaults(model_label, method, fast=bool(fast))
        return [values[name] for name in names]

    def model_defaults(self, model_label: str, method_name: str, fast: bool) -> list[Any]:
        return self._defaults(model_label, method_name, fast, KNOB_NAMES)

    def method_defaults(self, model_label: str, method_name: str, fast: bool) -> list[Any]:
        return self._defaults(model_label, method_name, fast, METHOD_KNOBS)

    def fast_defaults(self, model_label: str, method_name: str, fast: bool) -> list[Any]:
        return self._defaults(model_label, method_name, fast, FAST_KNOB_NAMES)

    # ---- removal (serialised by the queue), cancel, picking a candidate
    def prepare(
        self,
        image: str | None,
        editor_value: dict[str, Any] | None,
        upload: str | None,
        points: str,
        exclude: str,
        words: str,
        request: gr.Request,
    ) -> str | None:
        with user_errors():
            selection = SelectionRequest.parse(
                points or "", exclude or "", None, words, names=("points", "exclude", "box")
            )
            return self.service.prepare_mask(
                image, layers_of(editor_value), upload, session=session_of(request), selection=selection
            )

    def remove(self, values: dict[str, Any], request: gr.Request, progress: gr.Progress) -> tuple[Any, ...]:
        """Remove the object under `mask` (white = remove; None: the image's transparent pixels).

        Or select it (united with `mask` when both are given): `points` clicks on it ("x,y; x,y", in
        pixels), `exclude` clicks on what must stay, `box` "x0,y0,x1,y1", `object` its name in words
        (with a server started with a detector). `fast`: the fast values for the knobs left at their
        defaults. One result per seed (SIP; DIP gives one), in the image's size and format. Returns the
        candidates (gallery), the before/after pair of the first, its file, a status line.
        """
        if values["image"] is None:
            raise gr.Error("image: upload a photo first", print_exception=False)

        def report(done: int, total: int, description: str) -> None:
            progress((done, total) if total else 0.0, desc=description)

        with user_errors():
            settings = RemovalSettings.of_request(
                values, max_seeds=self.service.max_seeds, defaults=self.initial
            )
            selection = selection_of_request([values.get(name) for name in SELECTION_PARAMETERS])
            run = self.service.remove(
                values["image"],
                values["mask"],
                settings,
                session=session_of(request),
                progress=report,
                selection=selection,
            )
        return outputs_of_run(run)

    def cancel(self, request: gr.Request) -> str:
        self.service.cancel(session_of(request))
        return "Cancelling…"

    def pick(self, items: list[dict[str, str]], event: gr.SelectData) -> tuple[Any, ...]:
        if not items or not 0 <= event.index < len(items):
            return gr.skip(), gr.skip(), gr.skip()
        item = items[event.index]
        if not Path(item["result"]).is_file():
            raise gr.Error("This result has expired; run the removal again.", print_exception=False)
        return (item["before"], item["display"]), item["result"], f"Showing {item['caption']}."


def outputs_of_run(run: RemovalRun) -> tuple[Any, ...]:
    """The page's outputs of a removal: gallery, before/after, file, status, the candidates' state."""
    if run.cancelled:
        return gr.skip(), gr.skip(), gr.skip(), run.status, gr.skip()
    first = run.candidates[0]
    candidates = [
        {"before": run.before, "result": item.result, "display": item.display, "caption": item.caption}
        for item in run.candidates
    ]
    return (
        [(item.display, item.caption) for item in run.candidates],
        (run.before, first.display),
        first.result,
        run.status,
        candidates,
    )


def remove_endpoint(handlers: Handlers) -> Callable[..., tuple[Any, ...]]:
    """:meth:`Handlers.remove` as a function of the named parameters of ``/remove`` (Gradio names the API's
    parameters after the function's, and injects the request and the progress tracker by annotation and
    default)."""
    parameter = inspect.Parameter.POSITIONAL_OR_KEYWORD
    signature = inspect.Signature(
        [
            *(inspect.Parameter(name, parameter) for name in ALL_PARAMETERS),
            inspect.Parameter("request", parameter, annotation=gr.Request),
            inspect.Parameter("progress", parameter, default=gr.Progress()),
        ]
    )

    def remove(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        values = dict(signature.bind(*args, **kwargs).arguments)
        request, progress = values.pop("request"), values.pop("progress", gr.Progress())
        return handlers.remove(values, request, progress)

    remove.__signature__ = signature  # type: ignore[attr-defined]
    remove.__annotations__ = {"request": gr.Request}
    remove.__doc__ = Handlers.remove.__doc__
    return remove


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


_INTRO = (
    "# Attentive Eraser\n"
    "Remove an object from a photo with Stable Diffusion, no training "
    "(*Attentive Eraser*, Sun et al., AAAI 2025). "
    "**1** upload a photo · **2** paint over the object (or upload a mask) · **3** Remove · "
    "**4** compare, pick a candidate and download it at the photo's size and format."
)


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
        gr.Markdown(_INTRO)
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
