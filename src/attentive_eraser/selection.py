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

Segmenters share one small interface (:class:`Segmenter`) and are named by a spec string
(:func:`load_segmenter`):

* ``classic`` (the default): no weights, no torch. A click grows a region of similar colour (CIE Lab) from
  the clicked pixel and stops at the threshold just before the region leaks into its surroundings
  (:func:`grow_region`). A box runs OpenCV's GrabCut inside it (:func:`grabcut`), then grows a colour region
  from the deepest point of GrabCut's object, kept when it explains most of it. Good on flat objects and
  plain backgrounds; on photos prefer SAM.
* ``sam:<hub id or folder>``: Segment Anything (SAM; SAM 2 where its processor can load) through
  transformers, with point and box prompts; the best of its three masks by predicted IoU is kept.
* ``<segmenter>+detector:<hub id or folder>``: adds words. An open-vocabulary detector (OWLv2, OWL-ViT or
  Grounding DINO, through ``AutoModelForZeroShotObjectDetection``) turns the text into boxes, and the
  segmenter turns each box into a mask; the masks of every match (or of the ``top_k`` best) are united.

Every user mistake raises :class:`attentive_eraser.imaging.InputError` (a ``ValueError``) naming the
argument and the value: an empty prompt, a point outside the image, a box that is not one, text without
a detector, weights that are not on this machine (offline), a selection that is empty or covers about the
whole image.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import imaging

__all__ = [
    "DEFAULT_SEGMENTER",
    "MAX_SELECTION_SHARE",
    "ClassicSegmenter",
    "Detection",
    "Prompt",
    "SamSegmenter",
    "Segmenter",
    "SelectionRequest",
    "TextSegmenter",
    "ZeroShotDetector",
    "clear_cache",
    "fill_small_holes",
    "grabcut",
    "grow_region",
    "keep_components",
    "load_segmenter",
    "parse_box",
    "parse_point",
    "parse_points",
    "resize_selection",
    "select_object",
]

#: the segmenter used when none is named
DEFAULT_SEGMENTER = "classic"
#: a selection covering more than this share of the image is refused (no background left to fill from)
MAX_SELECTION_SHARE = 0.95
#: ``fill_holes=True`` fills holes up to this share of the selection's area (a ring keeps its middle)
MAX_HOLE_SHARE = 0.05
#: the classical segmenter works on at most this many pixels along the longer side (photos are shrunk)
CLASSIC_MAX_SIDE = 1024

Point = tuple[float, float]
Box = tuple[float, float, float, float]


# --------------------------------------------------------------------------------------------------
# Prompts and their checks


@dataclass(frozen=True)
class Prompt:
    """What the user pointed at, in pixels of the image: clicks on the object (``points``), clicks on what
    must stay (``negative_points``), a ``box`` around the object, or ``text`` naming it."""

    points: tuple[Point, ...] = ()
    negative_points: tuple[Point, ...] = ()
    box: Box | None = None
    text: str | None = None

    @property
    def is_empty(self) -> bool:
        return not self.points and self.box is None and not self.text


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))


def _check_points(name: str, points: object, size: tuple[int, int]) -> tuple[Point, ...]:
    """``points`` as a tuple of ``(x, y)`` floats inside the image; one pair alone counts as one point."""
    if points is None:
        return ()
    if isinstance(points, np.ndarray):
        points = points.tolist()
    if isinstance(points, (str, bytes)) or not isinstance(points, Sequence):
        raise imaging.InputError(name, f"{points!r} is not a list of (x, y) pixel positions")
    if len(points) == 2 and all(_is_number(value) for value in points):
        points = [points]
    width, height = size
    checked = []
    for index, point in enumerate(points):
        if isinstance(point, np.ndarray):
            point = point.tolist()
        if (
            isinstance(point, (str, bytes))
            or not isinstance(point, Sequence)
            or len(point) != 2
            or not all(_is_number(value) for value in point)
        ):
            raise imaging.InputError(
                name, f"{name}[{index}]={point!r} is not an (x, y) pair of finite numbers"
            )
        x, y = float(point[0]), float(point[1])
        if not (0 <= x < width and 0 <= y < height):
            raise imaging.InputError(
                name,
                f"{name}[{index}]=({point[0]}, {point[1]}) lies outside the "
                f"{width}x{height} image (x in [0, {width}), y in [0, {height}))",
            )
        checked.append((x, y))
    return tuple(checked)


def _check_box(box: object, size: tuple[int, int]) -> Box | None:
    """``box`` as ``(x0, y0, x1, y1)`` floats with ``0 <= x0 < x1 <= width`` (and the same for y)."""
    if box is None:
        return None
    if isinstance(box, np.ndarray):
        box = box.tolist()
    if (
        isinstance(box, (str, bytes))
        or not isinstance(box, Sequence)
        or len(box) != 4
        or not all(_is_number(value) for value in box)
    ):
        raise imaging.InputError("box", f"{box!r} is not (x0, y0, x1, y1), four finite numbers")
    x0, y0, x1, y1 = (float(value) for value in box)
    width, height = size
    if not (x0 < x1 and y0 < y1):
        raise imaging.InputError("box", f"{tuple(box)!r} is empty: it needs x0 < x1 and y0 < y1")
    if not (0 <= x0 and 0 <= y0 and x1 <= width and y1 <= height):
        raise imaging.InputError(
            "box",
            f"{tuple(box)!r} reaches outside the {width}x{height} image "
            f"(0 <= x0 < x1 <= {width}, 0 <= y0 < y1 <= {height})",
        )
    return x0, y0, x1, y1


def _check_text(text: object) -> str | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise imaging.InputError("text", f"{text!r} is not a string")
    cleaned = " ".join(text.split())
    if not cleaned:
        return None
    if len(cleaned) > 200:
        raise imaging.InputError(
            "text", f"{cleaned[:40]!r}... is {len(cleaned)} characters long; at most 200"
        )
    return cleaned


_NUMBER = r"\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*"


def parse_point(text: str, *, argument: str = "point") -> Point:
    """``"X,Y"`` (pixels; spaces allowed) -> ``(x, y)``; else ``InputError`` naming ``argument``."""
    match = re.fullmatch(f"{_NUMBER},{_NUMBER}", str(text))
    if match is None:
        raise imaging.InputError(argument, f"{text!r} is not X,Y (two numbers, in pixels, e.g. 120,80)")
    return float(match.group(1)), float(match.group(2))


def parse_box(text: str, *, argument: str = "box") -> Box:
    """``"X0,Y0,X1,Y1"`` -> ``(x0, y0, x1, y1)``; anything else raises ``InputError`` naming ``argument``."""
    match = re.fullmatch(",".join([_NUMBER] * 4), str(text))
    if match is None:
        raise imaging.InputError(
            argument, f"{text!r} is not X0,Y0,X1,Y1 (four numbers, in pixels, e.g. 10,20,90,120)"
        )
    x0, y0, x1, y1 = (float(value) for value in match.groups())
    return x0, y0, x1, y1


def parse_points(text: str, *, argument: str = "points") -> tuple[Point, ...]:
    """``"X,Y;X,Y;..."`` (a manifest cell, a form field) -> ``((x, y), ...)``; empty text gives ``()``."""
    parts = [part for part in str(text).split(";") if part.strip()]
    return tuple(parse_point(part, argument=argument) for part in parts)


@dataclass(frozen=True)
class SelectionRequest:
    """A selection as typed on a command line, in a batch manifest or in a web form (pixels of the image).

    Build it with :meth:`parse` (strings) or directly; :meth:`select` runs :func:`select_object`.
    """

    points: tuple[Point, ...] = ()
    negative_points: tuple[Point, ...] = ()
    box: Box | None = None
    text: str | None = None
    segmenter: str | None = None
    top_k: int | None = None

    @classmethod
    def parse(
        cls,
        points: Sequence[str] | str = (),
        negative_points: Sequence[str] | str = (),
        box: str | None = None,
        text: str | None = None,
        segmenter: str | None = None,
        top_k: int | None = None,
        *,
        names: tuple[str, str, str] = ("point", "exclude", "box"),
    ) -> SelectionRequest | None:
        """The request from strings (``"X,Y"`` each, or one ``"X,Y;X,Y"``; ``"X0,Y0,X1,Y1"``), or ``None``
        when nothing is selected. ``names`` are the user's names of the three fields, for messages."""

        def many(values: Sequence[str] | str, name: str) -> tuple[Point, ...]:
            values = [values] if isinstance(values, str) else list(values)
            return tuple(point for value in values for point in parse_points(value, argument=name))

        request = cls(
            points=many(points, names[0]),
            negative_points=many(negative_points, names[1]),
            box=None if box is None or not str(box).strip() else parse_box(box, argument=names[2]),
            text=_check_text(text),
            segmenter=segmenter.strip() if isinstance(segmenter, str) and segmenter.strip() else None,
            top_k=top_k,
        )
        if not request.points and not request.negative_points and request.box is None and not request.text:
            for name, value in (("segmenter", request.segmenter), ("top_k", request.top_k)):
                if value is not None:
                    raise imaging.InputError(
                        name, f"{value!r} is given but nothing to select: add a point, a box or an object"
                    )
            return None
        return request

    def select(
        self, image: str | os.PathLike | Image.Image | np.ndarray, *, device: Any = None
    ) -> np.ndarray:
        """:func:`select_object` with this request's fields."""
        return select_object(
            image,
            points=self.points,
            negative_points=self.negative_points,
            box=self.box,
            text=self.text,
            segmenter=self.segmenter,
            top_k=self.top_k,
            device=device,
        )


def _as_rgb_array(image: object) -> np.ndarray:
    """The image as an ``(H, W, 3)`` uint8 array: a path, a PIL image, or an array (H, W[, 3|4])."""
    if isinstance(image, np.ndarray):
        array = image
        if array.ndim == 2:
            array = np.repeat(array[..., None], 3, axis=-1)
        if array.ndim != 3 or array.shape[-1] not in (3, 4):
            raise imaging.InputError("image", f"expected an (H, W, 3) array, got shape {array.shape}")
        if array.dtype != np.uint8:
            if np.issubdtype(array.dtype, np.floating) and array.size and float(np.nanmax(array)) <= 1.0:
                array = array * 255.0
            array = np.clip(np.nan_to_num(array.astype(np.float64)), 0, 255).round().astype(np.uint8)
        return np.ascontiguousarray(array[..., :3])
    picture, _ = imaging.split_alpha(imaging.load_image(image))  # type: ignore[arg-type]
    return np.asarray(picture.convert("RGB"), dtype=np.uint8)


# --------------------------------------------------------------------------------------------------
# Post-processing: pure functions on boolean masks


def resize_selection(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow the mask by a disk of ``pixels`` (> 0), shrink it (< 0), or return a copy (0)."""
    if not isinstance(pixels, numbers.Integral) or isinstance(pixels, bool):
        raise imaging.InputError("grow", f"{pixels!r} is not a whole number of pixels (negative shrinks)")
    mask = np.asarray(mask, dtype=bool)
    if pixels == 0:
        return mask.copy()
    import cv2

    radius = abs(int(pixels))
    offsets = np.arange(-radius, radius + 1)
    disk = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius * radius).astype(np.uint8)
    if pixels > 0:
        return cv2.dilate(mask.astype(np.uint8), disk).astype(bool)
    # Outside the frame counts as object when shrinking, so an object cut by the border keeps that edge.
    return cv2.erode(mask.astype(np.uint8), disk, borderType=cv2.BORDER_CONSTANT, borderValue=1).astype(bool)


def fill_small_holes(mask: np.ndarray, max_area: float) -> np.ndarray:
    """Fill the holes of ``mask`` (background parts off the border) of at most ``max_area`` pixels."""
    import cv2

    mask = np.asarray(mask, dtype=bool)
    count, labels, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), connectivity=4)
    filled = mask.copy()
    height, width = mask.shape
    for label in range(1, count):
        left, top, box_width, box_height, area = stats[label]
        touches_border = left == 0 or top == 0 or left + box_width == width or top + box_height == height
        if not touches_border and area <= max_area:
            filled[labels == label] = True
    return filled


def keep_components(mask: np.ndarray, points: Sequence[Point] = ()) -> np.ndarray:
    """Keep the connected parts of ``mask`` holding one of ``points``; without such a part, the largest."""
    import cv2

    mask = np.asarray(mask, dtype=bool)
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask.copy()
    wanted = {int(labels[int(y), int(x)]) for x, y in points} - {0}
    if not wanted:
        areas = np.bincount(labels.ravel(), minlength=count)
        areas[0] = 0
        wanted = {int(np.argmax(areas))}
    return np.isin(labels, sorted(wanted))


def _check_selection(mask: np.ndarray, prompt: Prompt, segmenter: str) -> None:
    """Refuse an empty selection, or one covering about the whole image (nothing to fill it from)."""
    height, width = mask.shape
    shown = _describe_prompt(prompt)
    if not mask.any():
        raise imaging.InputError(
            "selection",
            f"{shown} selects nothing with segmenter={segmenter!r}; click "
            "inside the object, draw a box around it, or try another segmenter",
        )
    share = float(mask.mean())
    if share > MAX_SELECTION_SHARE:
        raise imaging.InputError(
            "selection",
            f"{shown} selects {share:.0%} of the {width}x{height} image with "
            f"segmenter={segmenter!r} (at most {MAX_SELECTION_SHARE:.0%}); click inside the "
            "object, add --exclude points on the background, or draw a box",
        )


def _describe_prompt(prompt: Prompt) -> str:
    def fmt(point: Point) -> str:
        return f"({point[0]:g}, {point[1]:g})"

    parts = []
    if prompt.points:
        parts.append("points=[" + ", ".join(fmt(point) for point in prompt.points) + "]")
    if prompt.negative_points:
        parts.append("negative_points=[" + ", ".join(fmt(point) for point in prompt.negative_points) + "]")
    if prompt.box is not None:
        parts.append("box=(" + ", ".join(f"{value:g}" for value in prompt.box) + ")")
    if prompt.text:
        parts.append(f"text={prompt.text!r}")
    return " ".join(parts) or "the prompt"


# --------------------------------------------------------------------------------------------------
# The segmenter interface


class Segmenter:
    """Turns a :class:`Prompt` into a boolean ``(H, W)`` mask of the image (``(H, W, 3)`` uint8).

    Subclasses implement :meth:`segment`; :meth:`segment_boxes` (one mask per box) loops over it unless a
    model can do better (SAM encodes the image once). ``supports_text`` says whether ``prompt.text`` is
    understood.
    """

    #: the spec string that names this segmenter (shown in messages)
    name: str = "segmenter"
    supports_text: bool = False

    def segment(self, image: np.ndarray, prompt: Prompt) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def segment_boxes(self, image: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        return [self.segment(image, Prompt(box=tuple(box))) for box in boxes]  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# The classical segmenter: Lab region growing for clicks, GrabCut for boxes


def _lab(image: np.ndarray) -> np.ndarray:
    """CIE Lab, float32 ``(H, W, 3)``: L in [0, 100], a and b about [-128, 127] (Euclidean ~ perceived)."""
    import cv2

    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


#: colour-distance thresholds (Lab units) tried by the region grow, from "the same colour" to "anything"
_THRESHOLDS = tuple(1.5 * 1.2**k for k in range(24))  # 1.5 ... 99
#: a threshold step "leaks" when the region grows by this factor and by this share of the image at once
_LEAK_GROWTH = 1.5
_LEAK_SHARE = 0.004


def _seed_colour(lab: np.ndarray, x: int, y: int) -> np.ndarray:
    """The clicked colour: the median of the 3x3 neighbours that are close to the clicked pixel itself."""
    height, width = lab.shape[:2]
    patch = lab[max(0, y - 1) : min(height, y + 2), max(0, x - 1) : min(width, x + 2)].reshape(-1, 3)
    centre = lab[y, x]
    close = patch[np.linalg.norm(patch - centre, axis=1) < 10.0]
    return np.median(close, axis=0) if len(close) else centre


def grow_region(
    image: np.ndarray,
    point: Point,
    *,
    negative_points: Sequence[Point] = (),
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """The region of similar colour around ``point``, ``(H, W)`` bool (empty if there is none to take).

    The region at colour threshold T is the 4-connected set of pixels within T (Lab distance) of the
    clicked colour that contains the click. T rises geometrically; the region kept is the last one before
    a step "leaks" (grows by ``_LEAK_GROWTH`` times and by ``_LEAK_SHARE`` of the image at once), so a flat
    object stops at its edge whatever its contrast. Pixels closer in colour to a negative click than to
    the clicked colour, and pixels outside ``allowed``, are never taken.
    """
    import cv2

    lab = _lab(image)
    height, width = lab.shape[:2]
    x, y = int(point[0]), int(point[1])
    distance = np.linalg.norm(lab - _seed_colour(lab, x, y), axis=-1)
    barrier = np.zeros((height, width), dtype=bool) if allowed is None else ~np.asarray(allowed, dtype=bool)
    for nx, ny in negative_points:
        other = np.linalg.norm(lab - _seed_colour(lab, int(nx), int(ny)), axis=-1)
        barrier |= other < distance
        barrier[int(ny), int(nx)] = True
    if barrier[y, x]:
        return np.zeros((height, width), dtype=bool)
    regions: list[np.ndarray] = []
    for threshold in _THRESHOLDS:
        candidate = ((distance < threshold) & ~barrier).astype(np.uint8)
        candidate[y, x] = 1
        _, labels = cv2.connectedComponents(candidate, connectivity=4)
        region = labels == labels[y, x]
        if regions:
            previous = int(regions[-1].sum())
            grown = int(region.sum()) - previous
            if grown > _LEAK_SHARE * height * width and region.sum() > _LEAK_GROWTH * previous:
                break
        regions.append(region)
        if region.mean() > MAX_SELECTION_SHARE:
            break
    return regions[-1]


def grabcut(
    image: np.ndarray,
    box: Box | None,
    *,
    points: Sequence[Point] = (),
    negative_points: Sequence[Point] = (),
    initial: np.ndarray | None = None,
    iterations: int = 5,
) -> np.ndarray:
    """OpenCV GrabCut: the object inside ``box`` (outside it is background), ``(H, W)`` bool.

    Clicks are hard labels (``points`` object, ``negative_points`` background, a 1-pixel disc each);
    ``initial`` (bool) marks probable object pixels inside the box, the rest of the box being probable
    background, instead of everything in the box being probable object.
    """
    import cv2

    height, width = image.shape[:2]
    labels = np.full((height, width), cv2.GC_BGD, dtype=np.uint8)
    if box is None:
        x0, y0, x1, y1 = 0, 0, width, height
    else:
        x0, y0 = math.floor(box[0]), math.floor(box[1])
        x1, y1 = math.ceil(box[2]), math.ceil(box[3])
    inside = np.zeros((height, width), dtype=bool)
    inside[y0:y1, x0:x1] = True
    if initial is None:
        labels[inside] = cv2.GC_PR_FGD
    else:
        labels[inside] = cv2.GC_PR_BGD
        labels[inside & np.asarray(initial, dtype=bool)] = cv2.GC_PR_FGD
    for (px, py), value in [*((p, cv2.GC_FGD) for p in points), *((p, cv2.GC_BGD) for p in negative_points)]:
        cv2.circle(labels, (int(px), int(py)), 1, int(value), thickness=-1)
    is_object = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD))
    if is_object.all() or not is_object.any():  # GrabCut needs both kinds of pixel
        return is_object
    background_model = np.zeros((1, 65), np.float64)
    foreground_model = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means start: the same input gives the same mask
    # OpenCV's stub requires a rect; with GC_INIT_WITH_MASK OpenCV ignores it and takes None
    cv2.grabCut(  # type: ignore[call-overload]
        image, labels, None, background_model, foreground_model, iterations, cv2.GC_INIT_WITH_MASK
    )
    return np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD))


def _box_mask(shape: tuple[int, int], box: Box) -> np.ndarray:
    """``(H, W)`` bool, True on the pixels whose centres lie inside ``box``."""
    height, width = shape
    x0, y0, x1, y1 = box
    columns = (np.arange(width) + 0.5 >= x0) & (np.arange(width) + 0.5 <= x1)
    rows = (np.arange(height) + 0.5 >= y0) & (np.arange(height) + 0.5 <= y1)
    return rows[:, None] & columns[None, :]


#: the box path keeps the colour region grown from GrabCut's deepest point when it has this share of
#: GrabCut's area (a flat object: GrabCut's own edges are rougher); else GrabCut's mask
_REGION_SHARE_OF_GRABCUT = 0.6
#: Lab distance from every colour of the box's rim above which a pixel may seed that colour region
_UNLIKE_RIM = 15.0


class ClassicSegmenter(Segmenter):
    """No weights, no torch: Lab region growing from each click (:func:`grow_region`, regions united), and
    GrabCut for a box (:func:`grabcut`, clicks as hard labels). Photos larger than ``max_side`` pixels along
    their longer side are segmented at that size and the mask scaled back."""

    name = "classic"

    def __init__(self, *, max_side: int = CLASSIC_MAX_SIDE) -> None:
        self.max_side = max_side

    def segment(self, image: np.ndarray, prompt: Prompt) -> np.ndarray:
        if prompt.text:
            raise imaging.InputError(
                "text",
                f"{prompt.text!r} needs a text-capable segmenter; "
                "segmenter='classic' understands clicks and boxes only (use e.g. "
                "'sam:<model>+detector:<model>')",
            )
        import cv2

        height, width = image.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        if scale < 1.0:
            small = cv2.resize(
                image,
                (max(1, round(width * scale)), max(1, round(height * scale))),
                interpolation=cv2.INTER_AREA,
            )
        else:
            small = image

        def shrink(point: Point) -> Point:
            return (min(point[0] * scale, small.shape[1] - 1), min(point[1] * scale, small.shape[0] - 1))

        points = [shrink(point) for point in prompt.points]
        negatives = [shrink(point) for point in prompt.negative_points]
        mask = np.zeros(small.shape[:2], dtype=bool)
        for point in points:
            mask |= grow_region(small, point, negative_points=negatives)
        if prompt.box is not None:
            box = tuple(value * scale for value in prompt.box)
            # clicks inside the box add their regions to what the box selects
            mask = (mask & _box_mask(small.shape[:2], box)) | self._segment_box(small, box, points, negatives)
        if scale < 1.0:
            mask = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) >= 0.5
        return mask

    @staticmethod
    def _segment_box(
        image: np.ndarray, box: Box, points: Sequence[Point], negatives: Sequence[Point]
    ) -> np.ndarray:
        """GrabCut in ``box``; then the colour region from its deepest point, if it explains most of it."""
        import cv2

        cut = grabcut(image, box, points=points, negative_points=negatives)
        inside = _box_mask(image.shape[:2], box)
        # Seed the colour region where GrabCut is sure and the colour is unlike the box's rim (the
        # background sample): not in a ring's hole, not on a background stripe.
        lab = _lab(image)
        rim = inside & ~cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        samples = lab[rim][:: max(1, int(rim.sum()) // 256)]  # (<= 256, 3)
        candidates = cut & inside
        if samples.size:
            rows, columns = np.nonzero(inside)
            window = (slice(rows.min(), rows.max() + 1), slice(columns.min(), columns.max() + 1))
            nearest = np.full(lab[window].shape[:2], np.inf, dtype=np.float32)
            for sample in samples:
                nearest = np.minimum(nearest, np.linalg.norm(lab[window] - sample, axis=-1))
            unlike = np.zeros_like(candidates)
            unlike[window] = nearest > _UNLIKE_RIM
            candidates &= unlike
        if not candidates.any():
            return cut
        depth = cv2.distanceTransform(np.pad(candidates, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
        region = grow_region(image, (float(x), float(y)), negative_points=negatives, allowed=inside)
        fills_the_box = (region & rim).sum() > 0.5 * rim.sum()
        if region.sum() >= _REGION_SHARE_OF_GRABCUT * cut.sum() and not fills_the_box:
            return region
        return cut


# --------------------------------------------------------------------------------------------------
# Segment Anything through transformers


def _source_error(
    argument: str, spec: str, source: str, error: BaseException | None = None
) -> imaging.InputError:
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    offline = any(os.environ.get(name, "") not in ("", "0") for name in names)
    detail = f" ({type(error).__name__})" if error is not None else ""
    where = "the hub is unreachable in offline mode (HF_HUB_OFFLINE=1)" if offline else "could not be fetched"
    return imaging.InputError(
        argument,
        f"{spec!r}: the weights {source!r} are not on this machine and "
        f"{where}{detail}; download them once (huggingface-cli download {source}) or pass a "
        "local folder",
    )


def _check_source(argument: str, spec: str, source: str) -> Path | str:
    """A local folder holding ``config.json``, or a hub id; anything else raises ``InputError``."""
    if not source:
        raise imaging.InputError(
            argument, f"{spec!r} names no model: give a hub id or a local folder after the ':'"
        )
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise imaging.InputError(
                argument,
                f"{spec!r}: {source!r} is a file; give the model's folder "
                "(config.json, model.safetensors, processor files)",
            )
        if not (path / "config.json").is_file():
            raise imaging.InputError(argument, f"{spec!r}: the folder {source!r} has no config.json")
        return path
    if not re.fullmatch(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+", source):
        raise imaging.InputError(
            argument, f"{spec!r}: {source!r} is neither a local folder nor a hub id (owner/name)"
        )
    return source


def _load_pretrained(argument: str, spec: str, source: str, loader: Any) -> Any:
    """``loader(source)`` with missing weights, offline mode or damaged files as one ``InputError``."""
    checked = _check_source(argument, spec, source)
    try:
        return loader(str(checked))
    except OSError as error:
        if isinstance(checked, Path):
            message = " ".join(str(error).split())[:200]
            raise imaging.InputError(argument, f"{spec!r}: cannot load {source!r}: {message}") from None
        raise _source_error(argument, spec, source, error) from None
    except ImportError as error:
        raise imaging.InputError(
            argument, f"{spec!r}: {source!r} needs a missing package: {' '.join(str(error).split())[:200]}"
        ) from None
    except (ValueError, KeyError) as error:
        raise imaging.InputError(
            argument,
            f"{spec!r}: {source!r} could not be loaded "
            f"({type(error).__name__}: {' '.join(str(error).split())[:200]})",
        ) from None


def _device(device: Any) -> Any:
    from .runtime import resolve_device

    return resolve_device(device)


class SamSegmenter(Segmenter):
    """Segment Anything (SAM, SAM-HQ or SAM 2) through transformers: clicks and boxes as prompts.

    Each prompt gives three candidate masks (``multimask_output``); the one with the highest predicted
    IoU is kept. Several boxes (the text path) are prompted together on one image encoding.
    """

    def __init__(self, model: Any, processor: Any, *, name: str = "sam") -> None:
        self.model = model.eval()
        self.processor = processor
        self.name = name

    @classmethod
    def from_pretrained(
        cls, source: str | os.PathLike, *, device: Any = None, spec: str | None = None
    ) -> SamSegmenter:
        """Load a SAM checkpoint (hub id or local folder); missing weights offline raise ``InputError``."""
        source = str(source)
        spec = spec or f"sam:{source}"

        def load(where: str) -> SamSegmenter:
            import transformers

            config = transformers.AutoConfig.from_pretrained(where)
            classes = {
                "sam": ("SamModel", "SamProcessor"),
                "sam_hq": ("SamHQModel", "SamHQProcessor"),
                "sam2": ("Sam2Model", "Sam2Processor"),
            }
            if config.model_type not in classes or not hasattr(transformers, classes[config.model_type][0]):
                raise ValueError(
                    f"model_type {config.model_type!r} is not a Segment Anything model ({', '.join(classes)})"
                )
            model_name, processor_name = classes[config.model_type]
            processor = getattr(transformers, processor_name).from_pretrained(where)
            model = getattr(transformers, model_name).from_pretrained(where)
            return cls(model.to(_device(device)), processor, name=spec)

        return _load_pretrained("segmenter", spec, source, load)

    def _run(self, image: np.ndarray, **prompts: Any) -> tuple[np.ndarray, np.ndarray]:
        """Masks ``(P, 3, H, W)`` bool and predicted IoUs ``(P, 3)`` for P prompts of one image."""
        import torch

        inputs = self.processor(images=Image.fromarray(image), return_tensors="pt", **prompts)
        device = next(self.model.parameters()).device
        dtype = next(self.model.parameters()).dtype
        inputs = {name: value.to(device) for name, value in inputs.items() if hasattr(value, "to")}
        inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
        original_sizes = inputs.pop("original_sizes")
        reshaped = inputs.pop("reshaped_input_sizes", None)
        with torch.inference_mode():
            outputs = self.model(**inputs, multimask_output=True)
        extra = () if reshaped is None else (reshaped.cpu(),)
        low_resolution = outputs.pred_masks.float().cpu()  # (1, P, 3, h, w) logits
        masks = self.processor.post_process_masks(low_resolution, original_sizes.cpu(), *extra)[0]
        return masks.numpy().astype(bool), outputs.iou_scores[0].float().cpu().numpy()

    @staticmethod
    def _best(masks: np.ndarray, scores: np.ndarray) -> list[np.ndarray]:
        """Per prompt, the candidate with the highest predicted IoU."""
        return [masks[index, int(np.argmax(scores[index]))] for index in range(masks.shape[0])]

    def segment(self, image: np.ndarray, prompt: Prompt) -> np.ndarray:
        if prompt.text:
            raise imaging.InputError(
                "text",
                f"{prompt.text!r} needs a detector; segmenter={self.name!r} "
                f"understands clicks and boxes only (use '{self.name}+detector:<model>')",
            )
        prompts: dict[str, Any] = {}
        clicks = [*prompt.points, *prompt.negative_points]
        if clicks:
            labels = [1] * len(prompt.points) + [0] * len(prompt.negative_points)
            # (image, object, point, xy) and (image, object, point): all clicks prompt one object
            prompts["input_points"] = [[[[x, y] for x, y in clicks]]]
            prompts["input_labels"] = [[labels]]
        if prompt.box is not None:
            prompts["input_boxes"] = [[list(prompt.box)]]  # (image, box, xyxy)
        masks, scores = self._run(image, **prompts)
        return self._best(masks, scores)[0]

    def segment_boxes(self, image: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        if not boxes:
            return []
        masks, scores = self._run(image, input_boxes=[[list(box) for box in boxes]])
        return self._best(masks, scores)


# --------------------------------------------------------------------------------------------------
# Words: an open-vocabulary detector -> boxes -> a segmenter


@dataclass(frozen=True)
class Detection:
    """One detected match of the text: its box ``(x0, y0, x1, y1)`` in image pixels and its score."""

    box: Box
    score: float


class ZeroShotDetector:
    """An open-vocabulary detector from transformers (OWLv2, OWL-ViT, Grounding DINO): text -> boxes."""

    def __init__(self, model: Any, processor: Any, *, name: str = "detector") -> None:
        self.model = model.eval()
        self.processor = processor
        self.name = name

    @classmethod
    def from_pretrained(
        cls, source: str | os.PathLike, *, device: Any = None, spec: str | None = None
    ) -> ZeroShotDetector:
        source = str(source)
        spec = spec or f"detector:{source}"

        def load(where: str) -> ZeroShotDetector:
            import transformers

            processor = transformers.AutoProcessor.from_pretrained(where)
            model = transformers.AutoModelForZeroShotObjectDetection.from_pretrained(where)
            return cls(model.to(_device(device)), processor, name=spec)

        return _load_pretrained("segmenter", spec, source, load)

    def detect(self, image: np.ndarray, text: str, *, threshold: float = 0.1) -> list[Detection]:
        """Every match of ``text`` scoring at least ``threshold``, best first, boxes clipped to the image."""
        import torch

        height, width = image.shape[:2]
        picture = Image.fromarray(image)
        grounded = self.model.config.model_type in ("grounding-dino", "mm-grounding-dino")
        if grounded:
            # Grounding DINO reads one lower-case phrase ending in a full stop.
            phrase = text.lower().rstrip(".") + "."
            inputs = self.processor(images=picture, text=phrase, return_tensors="pt")
            target = [(height, width)]
        else:
            inputs = self.processor(text=[[text]], images=picture, return_tensors="pt")
            # OWL-ViT/OWLv2 pad the image to a square; their boxes are relative to that square.
            side = max(height, width)
            target = [(side, side)]
        device = next(self.model.parameters()).device
        inputs = {name: value.to(device) for name, value in inputs.items() if hasattr(value, "to")}
        with torch.inference_mode():
            outputs = self.model(**inputs)
        for key, value in outputs.items():  # post-processing runs on the CPU
            if hasattr(value, "cpu"):
                outputs[key] = value.cpu()
        if grounded:
            results = self.processor.post_process_grounded_object_detection(
                outputs,
                inputs["input_ids"].cpu(),
                threshold=threshold,
                text_threshold=threshold,
                target_sizes=target,
            )
        else:
            results = self.processor.post_process_grounded_object_detection(
                outputs, threshold=threshold, target_sizes=target, text_labels=[[text]]
            )
        found = []
        for box, score in zip(results[0]["boxes"].tolist(), results[0]["scores"].tolist(), strict=False):
            x0, y0 = min(max(box[0], 0.0), width), min(max(box[1], 0.0), height)
            x1, y1 = min(max(box[2], 0.0), width), min(max(box[3], 0.0), height)
            if x1 - x0 >= 1.0 and y1 - y0 >= 1.0:
                found.append(Detection((x0, y0, x1, y1), float(score)))
        found.sort(key=lambda detection: -detection.score)
        return found


class TextSegmenter(Segmenter):
    """Words -> boxes (``detector``) -> masks (``segmenter``); clicks and boxes go to ``segmenter`` directly.

    Every match scoring at least ``threshold`` is used (``top_k``: only the best k); their masks are
    united. A negative click drops the matches whose mask contains it.
    """

    supports_text = True

    def __init__(
        self,
        segmenter: Segmenter,
        detector: ZeroShotDetector,
        *,
        threshold: float = 0.1,
        name: str | None = None,
    ) -> None:
        self.segmenter = segmenter
        self.detector = detector
        self.threshold = threshold
        self.name = name or f"{segmenter.name}+{detector.name}"

    def segment(self, image: np.ndarray, prompt: Prompt, *, top_k: int | None = None) -> np.ndarray:
        height, width = image.shape[:2]
        mask = np.zeros((height, width), dtype=bool)
        if prompt.points or prompt.box is not None:
            mask |= self.segmenter.segment(image, Prompt(prompt.points, prompt.negative_points, prompt.box))
        if prompt.text:
            detections = self.detector.detect(image, prompt.text, threshold=self.threshold)
            if not detections:
                raise imaging.InputError(
                    "text",
                    f"{prompt.text!r}: nothing in the image matches it with a score "
                    f"of at least {self.threshold:g} (detector {self.detector.name!r})",
                )
            chosen = detections[:top_k] if top_k is not None else detections
            for found in self.segmenter.segment_boxes(image, [detection.box for detection in chosen]):
                if any(found[int(y), int(x)] for x, y in prompt.negative_points):
                    continue
                mask |= found
        return mask

    def segment_boxes(self, image: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        return self.segmenter.segment_boxes(image, boxes)


# --------------------------------------------------------------------------------------------------
# Naming segmenters, and the one call


_SEGMENTERS: dict[tuple[str, str], Segmenter] = {}


def clear_cache() -> None:
    """Forget the loaded segmenters (their models are freed once nobody else holds them)."""
    _SEGMENTERS.clear()


def load_segmenter(spec: str | Segmenter | None = None, *, device: Any = None) -> Segmenter:
    """The segmenter a spec names (cached): ``classic``, ``sam:<hub id or folder>``, either followed by
    ``+detector:<hub id or folder>`` for text. A :class:`Segmenter` is returned as it is."""
    if isinstance(spec, Segmenter):
        return spec
    if spec is None:
        spec = DEFAULT_SEGMENTER
    if not isinstance(spec, str):
        raise imaging.InputError("segmenter", f"{spec!r} is neither a spec string nor a Segmenter")
    spec = spec.strip()
    key = (spec, str(device))
    if key in _SEGMENTERS:
        return _SEGMENTERS[key]
    first, plus, second = spec.partition("+")
    kind, _, source = first.partition(":")
    kind = kind.strip().lower()
    if kind == "classic" and not source:
        segmenter: Segmenter = ClassicSegmenter()
    elif kind == "sam":
        segmenter = SamSegmenter.from_pretrained(source.strip(), device=device, spec=first.strip())
    else:
        raise imaging.InputError(
            "segmenter",
            f"{spec!r} is not 'classic' or 'sam:<hub id or folder>' (optionally "
            "followed by '+detector:<hub id or folder>' for text)",
        )
    if plus:
        detector_kind, _, detector_source = second.partition(":")
        if detector_kind.strip().lower() not in ("detector", "owlv2", "owlvit", "grounding-dino"):
            raise imaging.InputError(
                "segmenter",
                f"{spec!r}: after '+' comes 'detector:<hub id or folder>' (an "
                "OWLv2, OWL-ViT or Grounding DINO model)",
            )
        detector = ZeroShotDetector.from_pretrained(
            detector_source.strip(), device=device, spec=second.strip()
        )
        segmenter = TextSegmenter(segmenter, detector, name=spec)
    _SEGMENTERS[key] = segmenter
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
    if top_k is not None and (
        isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1
    ):
        raise imaging.InputError("top_k", f"{top_k!r} must be a whole number >= 1 (or None: every match)")
    array = _as_rgb_array(image)
    height, width = array.shape[:2]
    size = (width, height)
    if abs(int(grow)) > max(size):
        raise imaging.InputError("grow", f"{grow!r} pixels exceeds the {width}x{height} image")
    prompt = Prompt(
        points=_check_points("points", points, size),
        negative_points=_check_points("negative_points", negative_points, size),
        box=_check_box(box, size),
        text=_check_text(text),
    )
    if prompt.is_empty:
        what = "only negative_points" if prompt.negative_points else "nothing"
        raise imaging.InputError(
            "points", f"{what} given: click the object (points), draw a box around it (box) or name it (text)"
        )
    chosen = load_segmenter(segmenter, device=device) if not isinstance(segmenter, Segmenter) else segmenter
    if prompt.text and not chosen.supports_text:
        raise imaging.InputError(
            "text",
            f"{prompt.text!r} needs a text-capable segmenter; "
            f"segmenter={chosen.name!r} understands clicks and boxes only (use "
            "'sam:<model>+detector:<model>')",
        )

    # 2. Segment
    if isinstance(chosen, TextSegmenter):
        mask = chosen.segment(array, prompt, top_k=top_k)
    else:
        mask = chosen.segment(array, prompt)
    mask = np.asarray(mask, dtype=bool)
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
    _check_selection(mask, prompt, chosen.name)
    return mask
