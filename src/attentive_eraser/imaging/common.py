"""What every imaging module shares: the error type that names the argument, path type, argument checks."""

from __future__ import annotations

import numbers
import os
import re
from typing import TypeAlias, Union

import numpy as np
from PIL import Image

PathLike: TypeAlias = Union[str, "os.PathLike[str]"]


class InputError(ValueError):
    """Bad user input. The message names the argument and the offending value, in one line.

    The one error type of the package's input checks, whichever layer makes them (images, settings,
    pipelines, model loading): the CLI turns it into exit code 2 and the web app into a message, by type.
    ``joined_by`` is what stands between the argument and the message: ``": "`` (``mask: selects no
    pixels``) or ``"="`` for a message that starts with the value (``seed=1.5 must be ...``).
    """

    def __init__(self, argument: str, message: str, *, joined_by: str = ": ") -> None:
        self.argument = argument
        self.message = " ".join(str(message).split())  # one line, whatever the cause said
        self.joined_by = joined_by
        super().__init__(f"{argument}{joined_by}{self.message}")

    @classmethod
    def from_text(cls, text: str) -> InputError:
        """The error of a message written as ``"name=value ..."`` or ``"name: ..."`` (the name is taken)."""
        match = _NAMED.match(text)
        if match is None:  # no name in front: the message is kept as it is
            return cls("", text, joined_by="")
        return cls(match.group(1), match.group(3), joined_by=match.group(2))

    def __reduce__(self) -> tuple[object, tuple[str, str, str]]:
        # The default would call InputError(str(self)) and fail: keep it picklable for worker processes.
        return _rebuild, (self.argument, self.message, self.joined_by)


_NAMED = re.compile(r"([A-Za-z_][\w\-]*)(=|: )(.*)", re.S)


def _rebuild(argument: str, message: str, joined_by: str) -> InputError:
    return InputError(argument, message, joined_by=joined_by)


def one_line(error: BaseException) -> str:
    """Collapse an exception's text into a single line."""
    return " ".join(str(error).split()) or type(error).__name__


def high_depth_to_l(image: Image.Image) -> Image.Image:
    """Map a 16/32-bit integer or float greyscale image to 8-bit "L" by its value range."""
    values = np.asarray(image).astype(np.float64)
    if image.mode.startswith("I;16"):
        scale = 255.0 / 65535.0
    else:
        # "I" and "F" carry no declared range: 0..1 floats, 0..255 or 16-bit data are all common.
        peak = float(values.max(initial=0.0))
        if image.mode == "F" and peak <= 1.0:
            scale = 255.0
        elif peak <= 255.0:
            scale = 1.0
        else:
            scale = 255.0 / 65535.0
    scaled = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled)  # uint8 (H, W) -> "L"


def rgb_or_rgba(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to "RGB", or to "RGBA" when the image carries transparency."""
    if image.mode in ("RGB", "RGBA") and not (image.mode == "RGB" and image.has_transparency_data):
        return image
    if image.mode.startswith("I") or image.mode == "F":
        # Pillow's own conversion clips 16-bit values at 255, which turns most photos white.
        return high_depth_to_l(image).convert("RGB")
    if image.has_transparency_data:  # RGBA-like modes, and P/L/RGB with a tRNS colour
        return image.convert("RGBA")
    return image.convert("RGB")


def check_size(size: object, argument: str) -> tuple[int, int]:
    """Validate a ``(width, height)`` pair of positive integers."""
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and int(v) > 0 for v in size)
    ):
        raise InputError(argument, f"expected (width, height) as two positive integers, got {size!r}")
    return int(size[0]), int(size[1])
