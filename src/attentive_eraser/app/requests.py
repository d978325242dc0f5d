"""What a ``/remove`` request may say, and its checks: parameters, seeds, knob values, the selection.

Plain Python (no Gradio): :func:`check_remove_request` sees the raw values before the web framework does,
so every error names the parameter and the value; :func:`knobs_of_request` reads the knobs of checked values
(:meth:`~attentive_eraser.app.service.RemovalSettings.of_request` the whole request).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import imaging
from ..selection import SELECTION_FIELDS, SelectionRequest, surface_names
from ..settings import (
    FAST_KNOBS,
    KNOB_NAMES,
    KNOBS,
    METHODS,
    STRATEGIES,
    Knob,
    check_method,
    check_seed,
    match_choice,
)

if TYPE_CHECKING:  # pragma: no cover
    from .service import EraserService

#: the dropdown label of ``model=None``, the embedded default model
BUILTIN_MODEL = "built-in default model"
MAX_SEEDS = 8

#: the knobs ``/remove`` has taken positionally since its first version, in this order. A compatibility
#: contract with existing clients, hence spelled out: a knob added to :data:`settings.KNOBS` later becomes
#: a trailing optional parameter (:data:`OPTION_PARAMETERS`), never one in the middle.
POSITIONAL_KNOBS = (
    "num_inference_steps",
    "strength",
    "removal_guidance_scale",
    "suppression_scale",
    "suppression_steps",
    "mask_dilation",
    "feather_radius",
    "resolution",
)
assert set(POSITIONAL_KNOBS) <= set(KNOB_NAMES), "a positional knob of /remove left settings.KNOBS"
#: the parameters of the ``/remove`` endpoint that every request gives, in order
REMOVE_PARAMETERS = ("image", "mask", "model", "method", "seeds", *POSITIONAL_KNOBS, "paste_back", "strategy")
#: the optional parameters of ``/remove`` that select the object (clicks, a box, words), from the selection
#: schema: each field's public name (``points``, ``negative_points``, ``box``, ``object``), then the older
#: names still taken (``exclude``); a request without them is one with none
SELECTION_PARAMETERS = surface_names("http")
#: the selection's public names: trailing parameters right after :data:`REMOVE_PARAMETERS`
_SELECTION_NAMES = tuple(field.public_name for field in SELECTION_FIELDS if field.http)
#: optional trailing parameters after the selection: ``fast``, then every knob of :data:`settings.KNOBS`
#: that is not positional (``scheduler``, and any knob added later), in the schema's order
OPTION_PARAMETERS = ("fast", *(name for name in KNOB_NAMES if name not in POSITIONAL_KNOBS))
#: every parameter of ``/remove``, in order. The selection's aliases come last: they serve requests by name
#: (gradio_client's keywords) written for earlier versions; by position, a field has its public name's place
ALL_PARAMETERS = (
    *REMOVE_PARAMETERS,
    *_SELECTION_NAMES,
    *OPTION_PARAMETERS,
    *(name for name in SELECTION_PARAMETERS if name not in _SELECTION_NAMES),
)


def shown(value: Any) -> str:
    """``repr`` of a request value, cut to one short line."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


def parse_seeds(text: str | int | Sequence[int], *, limit: int = MAX_SEEDS) -> tuple[int, ...]:
    """Seeds from ``"123, 321 777"`` (or an int, or a list): distinct, in order, each by
    :func:`settings.check_seed` (the rule of every front end: whole numbers in ``[0, 2**63)``)."""
    if isinstance(text, bool):
        raise imaging.InputError("seeds", f"expected whole numbers, got {text!r}")
    if isinstance(text, (int, numbers.Integral)):  # NumPy integers too
        parts: list[Any] = [text]
    elif isinstance(text, str):
        parts = [part for part in re.split(r"[\s,;]+", text.strip()) if part]
    else:
        parts = list(text)
    seeds: list[int] = []
    for part in parts:
        try:
            seed = check_seed(part, "seeds")
        except ValueError:
            raise imaging.InputError("seeds", f"{shown(part)} is not a whole number in [0, 2**63)") from None
        if seed not in seeds:
            seeds.append(seed)
    if not seeds:
        raise imaging.InputError("seeds", "give at least one seed, e.g. 123 or 123, 321, 777")
    if len(seeds) > limit:
        raise imaging.InputError("seeds", f"{len(seeds)} seeds given; at most {limit} run at once")
    return tuple(seeds)


def check_knob_value(knob: Knob, value: Any) -> None:
    """Refuse a request's value of ``knob``: a choice it lacks, or a number outside the page's slider.

    Stricter than :meth:`Knob.check` (the slider is a sub-range of the valid one): the API accepts what
    the page can send.
    """
    if knob.choices:
        if match_choice(value, knob.choices) is None:  # any case, as every front end reads choices
            raise imaging.InputError(
                knob.name, f"{shown(value)} must be one of {', '.join(map(repr, knob.choices))}"
            )
        return
    low, high = (knob.slider[0], knob.slider[1]) if knob.slider else (knob.low, knob.high)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise imaging.InputError(knob.name, f"{shown(value)} is not a number")
    if knob.whole and value != int(value):
        raise imaging.InputError(knob.name, f"{shown(value)} is not a whole number")
    if (low is not None and value < low) or (high is not None and value > high):
        raise imaging.InputError(knob.name, f"{shown(value)} is out of range [{low:g}, {high:g}]")


def _check_file(service: EraserService, name: str, value: Any) -> None:
    if value is None:
        if name == "image":
            raise imaging.InputError("image", "upload a photo first")
        return
    path = value.get("path") if isinstance(value, dict) else None
    if not isinstance(path, str) or not path:
        raise imaging.InputError(
            name,
            f"{shown(value)} is not an uploaded file (expected {{'path': <the name "
            "/gradio_api/upload returned>, 'meta': {'_type': 'gradio.FileData'}})",
        )
    service.check_upload(path, name)


def check_remove_request(service: EraserService, values: Sequence[Any]) -> None:
    """Check the raw values of a ``/remove`` request before the web framework touches them.

    Raises :class:`imaging.InputError` naming the parameter and its value: a missing value, a file that is not
    an upload (or not a file reference at all), a model the server does not offer, text where a number
    belongs, a number outside its slider, a fraction for a whole number, a flag that is not true/false, a
    choice that is not offered. The trailing optional parameters are checked when given (not ``None``).
    """
    if len(values) < len(REMOVE_PARAMETERS):
        missing = ", ".join(REMOVE_PARAMETERS[len(values) :])
        raise imaging.InputError(
            "data", f"expected {len(REMOVE_PARAMETERS)} values, got {len(values)} (missing: {missing})"
        )
    given = dict(zip(ALL_PARAMETERS, values, strict=False))
    for name in ("image", "mask"):
        _check_file(service, name, given[name])
    if not isinstance(given["model"], str) or given["model"] not in service.models:
        service.source_of(given["model"] if isinstance(given["model"], str) else shown(given["model"]))
    check_method(given["method"])
    if not isinstance(given["seeds"], (str, int, list)):
        raise imaging.InputError(
            "seeds", f"{shown(given['seeds'])} is not a list of seeds such as '123, 321'"
        )
    parse_seeds(given["seeds"], limit=service.max_seeds)
    for knob in KNOBS:
        if knob.name in POSITIONAL_KNOBS or given.get(knob.name) is not None:
            check_knob_value(knob, given.get(knob.name))
    for name in ("paste_back", "fast"):
        if (name == "paste_back" or given.get(name) is not None) and not isinstance(given.get(name), bool):
            raise imaging.InputError(name, f"{shown(given.get(name))} must be true or false")
    if match_choice(given["strategy"], STRATEGIES) is None:
        raise imaging.InputError("strategy", f"{shown(given['strategy'])} must be 'resize' or 'crop'")
    selection_of_request([given.get(name) for name in SELECTION_PARAMETERS])


def completed_request(values: Sequence[Any], defaults: Mapping[str, Any]) -> list[Any]:
    """``values`` with the optional trailing parameters it lacks, or gives as ``None``, at their defaults.

    The selection fields: empty; ``fast``: false; a knob: ``defaults[name]`` (the page's initial value,
    what the API documents as the parameter's default). Extra values beyond the last parameter are kept.
    Text choices (method, strategy, a choice knob) come back in their listed spelling: the page's radio
    groups take only that, and ``remove()`` and the CLI read ``"DIP"`` as ``"dip"`` too.
    """
    completed = list(values)
    completed += [None] * (len(ALL_PARAMETERS) - len(completed))
    choices = {"method": METHODS, "strategy": STRATEGIES, **{k.name: k.choices for k in KNOBS if k.choices}}
    for index, name in enumerate(ALL_PARAMETERS):
        if name in choices and index < len(completed):
            completed[index] = match_choice(completed[index], choices[name]) or completed[index]
    for index, name in enumerate(ALL_PARAMETERS[len(REMOVE_PARAMETERS) :], start=len(REMOVE_PARAMETERS)):
        if completed[index] is None:
            completed[index] = (
                "" if name in SELECTION_PARAMETERS else False if name == "fast" else defaults[name]
            )
    return completed


def selection_of_request(values: Sequence[Any]) -> SelectionRequest | None:
    """The selection of a ``/remove`` request: ``values`` of :data:`SELECTION_PARAMETERS`, in their order
    (``points``, ``negative_points`` or ``exclude``: ``"X,Y;X,Y"``; ``box``: ``"X0,Y0,X1,Y1"``;
    ``object``: words; missing or empty: not set), or ``None``. A field given under two names is
    refused; messages name the parameter given."""
    given = dict(zip(SELECTION_PARAMETERS, values, strict=False))
    for name, value in given.items():
        if value is not None and not isinstance(value, str):
            raise imaging.InputError(name, f"{shown(value)} is not text (e.g. '120,80;130,90' for points)")
    return SelectionRequest.of_names(given)


def knob_of_value(knob: Knob, value: Any) -> Any:
    """A form value (a slider's float, a dropdown's text) as the knob's type."""
    if knob.choices:
        return str(value)
    return int(value) if knob.whole else float(value)


def knobs_of_request(values: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The knob values a checked ``/remove`` request sets (``values`` by parameter name), as the knobs' types.

    A knob that is missing or ``None`` is not set (the model's preset). With ``fast``, a knob of
    :data:`settings.FAST_KNOBS` that the request leaves at its default (``defaults``: the page's initial
    values, the API's defaults) is not set either, so the fast value replaces it; a knob it moved keeps
    its value.
    """
    fast = bool(values.get("fast") or False)
    unmoved = {
        name
        for name in FAST_KNOBS.get(values.get("method", "sip"), {})
        if fast and defaults is not None and values.get(name) == defaults.get(name)
    }
    return {
        knob.name: knob_of_value(knob, values[knob.name])
        for knob in KNOBS
        if values.get(knob.name) is not None and knob.name not in unmoved
    }
