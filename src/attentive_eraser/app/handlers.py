"""The page's event handlers around one :class:`~attentive_eraser.app.service.EraserService`, and the
``/remove`` endpoint built from them.

Input errors of the package (``imaging.InputError``, naming the argument) reach the page as a message
(:func:`user_errors`).
"""

# No ``from __future__ import annotations`` here: Gradio reads the event handlers' annotations
# (gr.Request, gr.SelectData) at run time, with typing.get_type_hints.
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from .. import imaging
from ..selection import SelectionRequest
from ..settings import KNOB_NAMES, Method
from .layout import FAST_KNOB_NAMES, METHOD_KNOBS
from .preview import click_on_preview
from .requests import ALL_PARAMETERS, SELECTION_PARAMETERS, selection_of_request
from .service import EraserService, RemovalRun, RemovalSettings


@contextmanager
def user_errors() -> Iterator[None]:
    """Show the package's input errors (:class:`imaging.InputError`, from every layer) as a message in the
    page, the rule the CLI applies for its exit code 2; anything else is a bug and keeps its traceback."""
    try:
        yield
    except imaging.InputError as error:
        raise gr.Error(str(error), print_exception=False) from error


def session_of(request: gr.Request | None) -> str:
    return str(getattr(request, "session_hash", None) or "")


def layers_of(editor: dict[str, Any] | None) -> list[Image.Image]:
    return [layer for layer in (editor or {}).get("layers") or [] if layer is not None]


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
