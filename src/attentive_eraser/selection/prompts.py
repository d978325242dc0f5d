"""What the user points at, checked: clicks, a box, words and ``top_k`` as one :class:`Prompt`.

Coordinates are pixels of the image as given, ``(x, y)`` from the top-left corner; a box is
``(x0, y0, x1, y1)`` with ``x0 < x1`` and ``y0 < y1``. Every check raises
:class:`attentive_eraser.imaging.InputError` naming the argument and the value. The :class:`Segmenter`
interface (a prompt -> a mask) lives here too, since every segmenter module builds on it.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import imaging

#: a selection covering more than this share of the image is refused (no background left to fill from)
MAX_SELECTION_SHARE = 0.95
#: the longest object text accepted, in characters (after collapsing white space)
MAX_TEXT_LENGTH = 200

Point = tuple[float, float]
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Prompt:
    """What the user pointed at, in pixels of the image: clicks on the object (``points``), clicks on what
    must stay (``negative_points``), a ``box`` around the object, or ``text`` naming it; ``top_k`` keeps
    only the k best matches of the text (``None``: every match)."""

    points: tuple[Point, ...] = ()
    negative_points: tuple[Point, ...] = ()
    box: Box | None = None
    text: str | None = None
    top_k: int | None = None

    @property
    def is_empty(self) -> bool:
        return not self.points and self.box is None and not self.text


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

    def refuse_text(self, prompt: Prompt) -> None:
        """Raise ``InputError`` when ``prompt`` has text this segmenter cannot read."""
        if prompt.text and not self.supports_text:
            raise imaging.InputError(
                "text",
                f"{prompt.text!r} needs a text-capable segmenter; segmenter={self.name!r} understands "
                "clicks and boxes only (wrap it in a TextSegmenter with a detector)",
            )


# --------------------------------------------------------------------------------------------------
# Checks of Python values (pixels of an image of a known size)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))


def check_points(name: str, points: object, size: tuple[int, int]) -> tuple[Point, ...]:
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


def check_box(box: object, size: tuple[int, int], *, name: str = "box") -> Box | None:
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
        raise imaging.InputError(name, f"{box!r} is not (x0, y0, x1, y1), four finite numbers")
    x0, y0, x1, y1 = (float(value) for value in box)
    width, height = size
    if not (x0 < x1 and y0 < y1):
        raise imaging.InputError(name, f"{tuple(box)!r} is empty: it needs x0 < x1 and y0 < y1")
    if not (0 <= x0 and 0 <= y0 and x1 <= width and y1 <= height):
        raise imaging.InputError(
            name,
            f"{tuple(box)!r} reaches outside the {width}x{height} image "
            f"(0 <= x0 < x1 <= {width}, 0 <= y0 < y1 <= {height})",
        )
    return x0, y0, x1, y1


def check_text(text: object, *, name: str = "text") -> str | None:
    """``text`` with its white space collapsed (``None`` when there is none), at most 200 characters."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise imaging.InputError(name, f"{text!r} is not a string")
    cleaned = " ".join(text.split())
    if not cleaned:
        return None
    if len(cleaned) > MAX_TEXT_LENGTH:
        raise imaging.InputError(
            name, f"{cleaned[:40]!r}... is {len(cleaned)} characters long; at most {MAX_TEXT_LENGTH}"
        )
    return cleaned


def check_top_k(top_k: object, *, name: str = "top_k") -> int | None:
    """``top_k`` as a whole number >= 1, or ``None`` (every match)."""
    if top_k is None:
        return None
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
        raise imaging.InputError(name, f"{top_k!r} must be a whole number >= 1 (or None: every match)")
    return int(top_k)


def check_prompt(
    size: tuple[int, int],
    *,
    points: object = None,
    negative_points: object = None,
    box: object = None,
    text: object = None,
    top_k: object = None,
) -> Prompt:
    """The checked :class:`Prompt` for an image of ``size`` ``(width, height)``; refuses an empty one."""
    prompt = Prompt(
        points=check_points("points", points, size),
        negative_points=check_points("negative_points", negative_points, size),
        box=check_box(box, size),
        text=check_text(text),
        top_k=check_top_k(top_k),
    )
    if prompt.is_empty:
        what = "only negative_points" if prompt.negative_points else "nothing"
        raise imaging.InputError(
            "points", f"{what} given: click the object (points), draw a box around it (box) or name it (text)"
        )
    return prompt


def as_rgb_array(image: object) -> np.ndarray:
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


def describe_prompt(prompt: Prompt) -> str:
    """The prompt as the user gave it, for messages: ``points=[(20, 30)] box=(0, 0, 9, 9)``."""

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


def check_selection(mask: np.ndarray, prompt: Prompt, segmenter: str) -> None:
    """Refuse an empty selection, or one covering about the whole image (nothing to fill it from)."""
    height, width = mask.shape
    shown = describe_prompt(prompt)
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


# --------------------------------------------------------------------------------------------------
# Parsing text (a command-line value, a manifest cell, a form field)

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


def read_points(values: Sequence[str] | str | None, argument: str) -> tuple[Point, ...]:
    """Clicks from one text (``"X,Y;X,Y"``) or several (a repeated option, ``"X,Y"`` each); none: ``()``."""
    if values is None:
        return ()
    texts = [values] if isinstance(values, str) else list(values)
    return tuple(point for text in texts for point in parse_points(text, argument=argument))


def read_box(text: str | None, argument: str) -> Box | None:
    """A box from ``"X0,Y0,X1,Y1"``; missing or blank: ``None``."""
    return None if text is None or not str(text).strip() else parse_box(text, argument=argument)


def read_spec(text: object, argument: str = "segmenter") -> str | None:
    """A segmenter spec with its surrounding spaces dropped; missing or blank: ``None``."""
    return text.strip() if isinstance(text, str) and text.strip() else None


def read_top_k(text: object, argument: str = "top_k") -> int | None:
    """``top_k`` from text (``"3"``) or a number, checked; missing or blank: ``None``."""
    if isinstance(text, str):
        if not text.strip():
            return None
        number = int(text.strip()) if re.fullmatch(r"\s*[-+]?\d+\s*", text) else None
        if number is None or number < 1:  # typed text: one message, without the Python-only None
            raise imaging.InputError(argument, f"{text!r} is not a whole number >= 1")
        return number
    return check_top_k(text, name=argument)
