"""Naming segmenters: a registry from a spec's prefix to a factory, and the one call, :func:`select_object`.

A spec is ``<segmenter>[+<add-on>...]``: a segmenter kind's prefix alone (``classic``) or with a source
after a colon (``sam:<hub id or folder>``), then optionally add-ons that wrap it (``+detector:<hub id or
folder>`` adds words). :func:`load_segmenter` reads a spec through the registry; every message and help
text that lists the kinds (:func:`spec_help`, :func:`describe_kinds`, the refusals) is built from it, so
a kind registered with :func:`register_segmenter` is named, loadable and documented at once.
"""

from __future__ import annotations

import numbers
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from PIL import Image

from .. import imaging
from ..imaging.morphology import fill_small_holes, keep_components, resize_selection
from .classic import ClassicSegmenter
from .detector import ZeroShotDetector
from .prompts import Box, Point, Segmenter, as_rgb_array, check_prompt, check_selection
from .sam import SamSegmenter
from .text import TextSegmenter

#: the segmenter used when none is named
DEFAULT_SEGMENTER = "classic"
#: ``fill_holes=True`` fills holes up to this share of the selection's area (a ring keeps its middle)
MAX_HOLE_SHARE = 0.05


class SegmenterFactory(Protocol):
    """Builds the segmenter of one spec part: ``source`` follows the colon (``""`` when none), ``spec`` is
    the part itself (the segmenter's name in messages)."""

    def __call__(self, source: str, *, device: Any, spec: str) -> Segmenter: ...


class AddOnFactory(Protocol):
    """Wraps ``segmenter`` (the spec before the ``+``); ``spec`` is the add-on's own part, ``name`` the
    whole spec up to it (the wrapper's name in messages)."""

    def __call__(
        self, segmenter: Segmenter, source: str, *, device: Any, spec: str, name: str
    ) -> Segmenter: ...


@dataclass(frozen=True)
class _KindFields:
    """What every kind a spec can name has.

    ``prefix`` (lower case) starts its spec part; ``source`` says what follows the colon (``"hub id or
    folder"``), ``None`` when nothing may. ``help`` is a short phrase for one-line help, ``details`` a
    paragraph for documentation. ``aliases`` are other prefixes for the same kind.
    """

    prefix: str
    factory: Any
    help: str
    details: str = ""
    source: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def usage(self) -> str:
        """How a spec names it: ``classic``, ``sam:<hub id or folder>``."""
        return self.prefix if self.source is None else f"{self.prefix}:<{self.source}>"


@dataclass(frozen=True)
class SegmenterKind(_KindFields):
    """One kind of segmenter a spec can name (the fields: :class:`_KindFields`)."""

    factory: SegmenterFactory


@dataclass(frozen=True)
class AddOnKind(_KindFields):
    """A kind that follows a ``+`` and wraps the segmenter before it, giving it words (a detector)."""

    factory: AddOnFactory


Kind = SegmenterKind | AddOnKind

#: every registered kind, in the order of registration
_KINDS: list[Kind] = []
#: prefix or alias -> its kind
_BY_PREFIX: dict[str, Kind] = {}
#: (spec, device) -> (the prefixes its kinds were registered under, the loaded segmenter)
_SEGMENTERS: dict[tuple[str, str], tuple[frozenset[str], Segmenter]] = {}


def register_segmenter(kind: Kind, *, replace: bool = False) -> Kind:
    """Add ``kind`` to the registry (``replace``: instead of the kind that holds its prefix); returns it."""
    names = (kind.prefix, *kind.aliases)
    for name in names:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.\-]*", name):
            raise ValueError(f"prefix {name!r} must be lower-case letters, digits, '_', '.' or '-'")
    taken = {_BY_PREFIX[name].prefix for name in names if name in _BY_PREFIX}
    if taken and not replace:
        raise ValueError(f"{', '.join(sorted(taken))}: already registered (pass replace=True)")
    for prefix in taken:
        unregister_segmenter(prefix)
    _KINDS.append(kind)
    _BY_PREFIX.update(dict.fromkeys(names, kind))
    return kind


def unregister_segmenter(prefix: str) -> None:
    """Remove the kind registered under ``prefix`` and forget the segmenters loaded through it."""
    kind = _BY_PREFIX.get(prefix)
    if kind is None:
        raise KeyError(f"no segmenter kind is registered under {prefix!r}")
    _KINDS.remove(kind)
    for name in (kind.prefix, *kind.aliases):
        _BY_PREFIX.pop(name, None)
    for key in [key for key, (prefixes, _) in _SEGMENTERS.items() if kind.prefix in prefixes]:
        del _SEGMENTERS[key]


def segmenter_kinds() -> tuple[SegmenterKind, ...]:
    """The registered kinds that start a spec, in the order of registration."""
    return tuple(kind for kind in _KINDS if isinstance(kind, SegmenterKind))


def add_on_kinds() -> tuple[AddOnKind, ...]:
    """The registered kinds that follow a ``+``, in the order of registration."""
    return tuple(kind for kind in _KINDS if isinstance(kind, AddOnKind))


def _either(items: Sequence[str]) -> str:
    """``'a'``, ``'a' or 'b'``, ``'a', 'b' or 'c'``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def spec_help() -> str:
    """One line naming every spec: ``classic (…; the default), sam:<hub id or folder> (…), followed
    by +detector:<hub id or folder> (…) for words``, as the registry holds them."""
    segmenters = [
        f"{kind.usage} ({kind.help}{'; the default' if kind.prefix == DEFAULT_SEGMENTER else ''})"
        for kind in segmenter_kinds()
    ]
    add_ons = [f"+{kind.usage} ({kind.help})" for kind in add_on_kinds()]
    text = _either(segmenters)
    return f"{text}; any of them followed by {_either(add_ons)} for words" if add_ons else text


def describe_kinds() -> str:
    """A reST bullet list of every kind with its paragraph, for documentation."""
    lines = []
    for kind in _KINDS:
        usage = kind.usage if isinstance(kind, SegmenterKind) else f"<segmenter>+{kind.usage}"
        default = " (the default)" if kind.prefix == DEFAULT_SEGMENTER else ""
        lines.append(f"* ``{usage}``{default}: {kind.details or kind.help}")
    return "\n".join(lines)


def text_example() -> str:
    """A spec that reads words, for messages: ``'sam:<model>+detector:<model>'``."""
    with_source = [kind for kind in segmenter_kinds() if kind.source is not None] or list(segmenter_kinds())
    add_ons = add_on_kinds()
    if not with_source or not add_ons:
        return "a segmenter with an add-on that reads words"

    def part(kind: Kind) -> str:
        return kind.prefix if kind.source is None else f"{kind.prefix}:<model>"

    return f"'{part(with_source[0])}+{part(add_ons[0])}'"


def _refuse_segmenter(spec: str) -> imaging.InputError:
    named = _either([repr(kind.usage) for kind in segmenter_kinds()])
    add_ons = _either([repr("+" + kind.usage) for kind in add_on_kinds()]) if add_on_kinds() else ""
    more = f" (optionally followed by {add_ons} for text)" if add_ons else ""
    return imaging.InputError("segmenter", f"{spec!r} is not {named}{more}")


def _refuse_add_on(spec: str) -> imaging.InputError:
    if not add_on_kinds():
        return imaging.InputError("segmenter", f"{spec!r}: no kind may follow '+' (none is registered)")
    named = _either([repr(kind.usage) for kind in add_on_kinds()])
    what = "; ".join(kind.help for kind in add_on_kinds())
    return imaging.InputError("segmenter", f"{spec!r}: after '+' comes {named} ({what})")


def parse_spec(spec: str) -> list[tuple[Kind, str, str]]:
    """``spec``'s parts as ``(kind, source, part)``: a segmenter kind, then add-ons; refused with the
    registered kinds named when a part is none of them."""
    parsed: list[tuple[Kind, str, str]] = []
    for index, part in enumerate(spec.split("+")):
        prefix, colon, source = part.partition(":")
        kind = _BY_PREFIX.get(prefix.strip().lower())
        wanted = SegmenterKind if index == 0 else AddOnKind
        if not isinstance(kind, wanted) or (kind.source is None and source):
            raise _refuse_segmenter(spec) if index == 0 else _refuse_add_on(spec)
        parsed.append((kind, source.strip(), part.strip()))
    return parsed


def clear_cache() -> None:
    """Forget the loaded segmenters (their models are freed once nobody else holds them)."""
    _SEGMENTERS.clear()


def load_segmenter(spec: str | Segmenter | None = None, *, device: Any = None) -> Segmenter:
    """The segmenter a spec names (cached per spec and device), read through the registry
    (:func:`spec_help` lists the kinds; default ``classic``). A :class:`Segmenter` is returned as it is.
    A spec that names no registered kind, or weights that cannot be loaded, raise ``InputError``."""
    if isinstance(spec, Segmenter):
        return spec
    if spec is None:
        spec = DEFAULT_SEGMENTER
    if not isinstance(spec, str):
        raise imaging.InputError("segmenter", f"{spec!r} is neither a spec string nor a Segmenter")
    spec = spec.strip()
    key = (spec, str(device))
    if key in _SEGMENTERS:
        return _SEGMENTERS[key][1]
    parts = parse_spec(spec)  # every part is checked before any model loads
    raw = spec.split("+")
    segmenter: Segmenter | None = None
    for index, (kind, source, part) in enumerate(parts):
        if isinstance(kind, SegmenterKind):
            segmenter = kind.factory(source, device=device, spec=part)
        else:
            assert segmenter is not None  # parse_spec puts a segmenter kind first
            name = "+".join(raw[: index + 1]).strip()
            segmenter = kind.factory(segmenter, source, device=device, spec=part, name=name)
    assert segmenter is not None
    _SEGMENTERS[key] = (frozenset(kind.prefix for kind, _, _ in parts), segmenter)
    return segmenter


def select_object(
    image: str | os.PathLike | Image.Image | np.ndarray,
    *,
    points: Sequence[Point] | None = None,
    negative_points: Sequence[Point] | None = None,
    box: Box | Sequence[float] | None = None,
    text: str | None = None,
    segmenter: str | Segmenter | None = None,
    grow: int = 0,
    fill_holes: bool = True,
    largest_component: bool = True,
    top_k: int | None = None,
    device: Any = None,
) -> np.ndarray:
    """The mask ``(H, W)`` bool of the object the prompt points at, ``True`` on the object.

    ``points`` are clicks on the object (several: its parts; with the classical segmenter each click's
    region is added), ``negative_points`` clicks on what must stay, ``box`` ``(x0, y0, x1, y1)`` a box
    around it, ``text`` its name (needs a segmenter with a detector). ``segmenter``: a spec for
    :func:`load_segmenter` (default ``classic``) or a :class:`Segmenter`. Then: ``grow`` pixels of growth
    (negative: shrink), ``fill_holes`` fills holes up to 5 % of the selection's area, ``largest_component``
    keeps the connected parts holding a click (the largest part without clicks), ``top_k`` keeps the k
    best text matches (default: every match). An empty selection, or one covering more than 95 % of the
    image, raises :class:`attentive_eraser.imaging.InputError`.
    """
    # 1. Check the prompt (cheap, before any model loads)
    for name, flag in (("fill_holes", fill_holes), ("largest_component", largest_component)):
        if not isinstance(flag, (bool, np.bool_)):
            raise imaging.InputError(name, f"{flag!r} must be True or False")
    if not isinstance(grow, numbers.Integral) or isinstance(grow, bool):
        raise imaging.InputError("grow", f"{grow!r} is not a whole number of pixels (negative shrinks)")
    array = as_rgb_array(image)
    height, width = array.shape[:2]
    size = (width, height)
    if abs(int(grow)) > max(size):
        raise imaging.InputError("grow", f"{grow!r} pixels exceeds the {width}x{height} image")
    prompt = check_prompt(
        size, points=points, negative_points=negative_points, box=box, text=text, top_k=top_k
    )
    chosen = load_segmenter(segmenter, device=device)
    if prompt.text and not chosen.supports_text:
        raise imaging.InputError(
            "text",
            f"{prompt.text!r} needs a text-capable segmenter; segmenter={chosen.name!r} understands "
            f"clicks and boxes only (use {text_example()})",
        )

    # 2. Segment
    mask = np.asarray(chosen.segment(array, prompt), dtype=bool)
    if mask.shape != (height, width):
        raise ValueError(
            f"segmenter {chosen.name!r} returned a mask of shape {mask.shape}, not {(height, width)}"
        )

    # 3. Post-process: holes, stray parts, growth
    if fill_holes and mask.any():
        mask = fill_small_holes(mask, MAX_HOLE_SHARE * mask.sum())
    if largest_component and mask.any():
        mask = keep_components(mask, prompt.points)
    mask = resize_selection(mask, int(grow))
    check_selection(mask, prompt, chosen.name)
    return mask


# --------------------------------------------------------------------------------------------------
# The built-in kinds


def _classic(source: str, *, device: Any, spec: str) -> Segmenter:
    return ClassicSegmenter()


def _sam(source: str, *, device: Any, spec: str) -> Segmenter:
    return SamSegmenter.from_pretrained(source, device=device, spec=spec)


def _detector(segmenter: Segmenter, source: str, *, device: Any, spec: str, name: str) -> Segmenter:
    detector = ZeroShotDetector.from_pretrained(source, device=device, spec=spec)
    return TextSegmenter(segmenter, detector, name=name)


register_segmenter(
    SegmenterKind(
        "classic",
        _classic,
        help="no weights, no torch",
        details="no weights, no torch. A click grows a region of similar colour (CIE Lab) from the "
        "clicked pixel and stops just before it leaks into its surroundings; a box runs OpenCV's GrabCut "
        "inside it. Good on flat objects and plain backgrounds; on photos prefer SAM.",
    )
)
register_segmenter(
    SegmenterKind(
        "sam",
        _sam,
        help="Segment Anything: SAM, SAM-HQ or SAM 2",
        details="Segment Anything (SAM, SAM-HQ or SAM 2) through transformers, with point and box "
        "prompts; the best of its three masks by predicted IoU is kept.",
        source="hub id or folder",
    )
)
register_segmenter(
    AddOnKind(
        "detector",
        _detector,
        help="an OWLv2, OWL-ViT or Grounding DINO model",
        details="adds words. An open-vocabulary detector (OWLv2, OWL-ViT or Grounding DINO, through "
        "AutoModelForZeroShotObjectDetection) turns the text into boxes and the segmenter turns each box "
        "into a mask; the masks of every match (or of the top_k best) are united.",
        source="hub id or folder",
        aliases=("owlv2", "owlvit", "grounding-dino"),
    )
)
