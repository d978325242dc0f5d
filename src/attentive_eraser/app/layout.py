"""The page's layout: one function a part of the page, each filling in the :class:`Page` it is given.

:func:`photo_column` (steps 1 and 2: the photo, the brush, the selection, a mask upload, the examples),
:func:`preview_column` (step 3: the mask preview, :func:`settings_panel`, Remove and Cancel) and
:func:`results_row` (step 4). Each knob's control is derived from its entry in
:data:`attentive_eraser.settings.KNOBS` (:func:`knob_control`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from ..settings import FAST_KNOBS, KNOB_NAMES, KNOBS, Knob, preset_field_names
from .requests import SELECTION_PARAMETERS
from .service import EraserService

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

#: the text above the page
INTRO = (
    "# Attentive Eraser\n"
    "Remove an object from a photo with Stable Diffusion, no training "
    "(*Attentive Eraser*, Sun et al., AAAI 2025). "
    "**1** upload a photo · **2** paint over the object (or upload a mask) · **3** Remove · "
    "**4** compare, pick a candidate and download it at the photo's size and format."
)


def elem_id_of(knob: Knob) -> str:
    """The page element id of a knob's control (``steps``, ``suppression-steps``, ``scheduler``, …)."""
    return _ELEM_IDS.get(knob.name, knob.name.replace("_", "-"))


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
