"""Select the object to remove without painting: a click, a box or words -> a boolean mask.

Python::

    from attentive_eraser.selection import select_object
    mask = select_object("photo.png", points=[(120, 80)])                 # one click, classical segmenter
    mask = select_object("photo.png", box=(40, 30, 200, 160))            # a box (GrabCut inside it)
    mask = select_object("photo.png", points=[(120, 80)], segmenter="sam:facebook/sam-vit-base")
    mask = select_object("photo.png", text="the red car",
                         segmenter="sam:facebook/sam-vit-base+detector:google/owlv2-base-patch16-ensemble")

Coordinates are pixels of the image as given, ``(x, y)`` from the top-left corner; a box is
``(x0, y0, x1, y1)`` with ``x0 < x1`` and ``y0 < y1``. The result is ``(H, W)`` bool, ``True`` on the object
(the convention of :mod:`attentive_eraser.imaging`).

Modules: :mod:`.prompts` (:class:`Prompt`, the checks, parsing text, the :class:`Segmenter` interface),
:mod:`.fields` (the selection fields' schema, from which every surface's names derive, and
:class:`SelectionRequest`), :mod:`.classic`, :mod:`.sam`, :mod:`.detector` and :mod:`.text` (the
segmenters), :mod:`.registry` (spec prefix -> factory, :func:`load_segmenter`, :func:`select_object`).
Mask tidying (growth, holes, stray parts) is pure morphology in :mod:`attentive_eraser.imaging.morphology`.
torch and transformers load with a model only.

Every user mistake raises :class:`attentive_eraser.imaging.InputError` (a ``ValueError``) naming the
argument and the value: an empty prompt, a point outside the image, a box that is not one, text without
a detector, weights that are not on this machine (offline), a selection that is empty or covers about the
whole image.

Segmenters share one small interface (:class:`Segmenter`) and are named by a spec string
(:func:`load_segmenter`); :func:`register_segmenter` adds a kind. The kinds registered on import:

"""

from __future__ import annotations

from ..imaging.morphology import fill_small_holes, keep_components, resize_selection
from .classic import CLASSIC_MAX_SIDE, ClassicSegmenter, grabcut, grow_region
from .detector import Detection, ZeroShotDetector
from .fields import (
    SELECTION_FIELD_NAMES,
    SELECTION_FIELDS,
    SelectionField,
    SelectionRequest,
    selection_field,
    surface_names,
)
from .prompts import (
    MAX_SELECTION_SHARE,
    Box,
    Point,
    Prompt,
    Segmenter,
    parse_box,
    parse_point,
    parse_points,
)
from .registry import (
    DEFAULT_SEGMENTER,
    MAX_HOLE_SHARE,
    AddOnKind,
    SegmenterKind,
    add_on_kinds,
    clear_cache,
    describe_kinds,
    load_segmenter,
    register_segmenter,
    segmenter_kinds,
    select_object,
    spec_help,
    unregister_segmenter,
)
from .sam import SamSegmenter
from .text import TextSegmenter

__doc__ = (__doc__ or "") + describe_kinds() + "\n"

__all__ = [
    "CLASSIC_MAX_SIDE",
    "DEFAULT_SEGMENTER",
    "MAX_HOLE_SHARE",
    "MAX_SELECTION_SHARE",
    "SELECTION_FIELDS",
    "SELECTION_FIELD_NAMES",
    "AddOnKind",
    "Box",
    "ClassicSegmenter",
    "Detection",
    "Point",
    "Prompt",
    "SamSegmenter",
    "SegmenterKind",
    "Segmenter",
    "SelectionField",
    "SelectionRequest",
    "TextSegmenter",
    "ZeroShotDetector",
    "add_on_kinds",
    "clear_cache",
    "describe_kinds",
    "fill_small_holes",
    "grabcut",
    "grow_region",
    "keep_components",
    "load_segmenter",
    "parse_box",
    "parse_point",
    "parse_points",
    "register_segmenter",
    "resize_selection",
    "segmenter_kinds",
    "select_object",
    "selection_field",
    "spec_help",
    "surface_names",
    "unregister_segmenter",
]
