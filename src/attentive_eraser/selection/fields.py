"""The selection fields, defined once, and :class:`SelectionRequest`, a selection as typed by a user.

Each :class:`SelectionField` names one field everywhere it appears — the keyword of
:func:`~attentive_eraser.selection.select_object`, the command-line option, the HTTP parameter and
manifest column, the web page's control — with its help text and the parser that reads it from text,
as :class:`attentive_eraser.settings.Knob` does for the removal knobs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from .. import imaging
from .prompts import Box, Point, check_text, read_box, read_points, read_spec, read_top_k
from .registry import select_object, spec_help


@dataclass(frozen=True)
class SelectionField:
    """One field of a selection.

    ``name`` is the keyword of ``select_object`` and the attribute of :class:`SelectionRequest`;
    ``parse(value, argument)`` reads it from what a surface gives (text; for a ``repeated`` option, a list
    of texts), ``argument`` naming it in messages, and gives ``None`` or ``()`` when it is blank. ``flag``
    is the command-line option (default ``--`` + the name with dashes), ``key`` the HTTP parameter and
    manifest column (default the name); ``http``/``manifest`` say whether those surfaces take it.
    ``label`` is the web page control's label (``""``: the page has none). ``help`` may hold
    ``{segmenters}``, which :meth:`describe` fills with the registered segmenter kinds.
    """

    name: str
    help: str
    metavar: str
    parse: Callable[[Any, str], Any]
    label: str = ""
    flag: str | None = None
    key: str | None = None
    repeated: bool = False
    http: bool = True
    manifest: bool = True

    @property
    def option(self) -> str:
        """The command-line flag, e.g. ``--point``."""
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def parameter(self) -> str:
        """The HTTP parameter and manifest column, e.g. ``exclude``."""
        return self.key or self.name

    def describe(self) -> str:
        """The help text, with the segmenter kinds registered now."""
        return self.help.format(segmenters=spec_help()) if "{segmenters}" in self.help else self.help


def _read_text(value: Any, argument: str) -> str | None:
    return check_text(value, name=argument)


SELECTION_FIELDS: tuple[SelectionField, ...] = (
    SelectionField(
        "points",
        "A click on the object, in pixels of the image from its top-left corner; repeat for its parts.",
        "X,Y",
        read_points,
        label="Object clicks (x,y; …)",
        flag="--point",
        repeated=True,
    ),
    SelectionField(
        "negative_points",
        "A click on what must stay (a negative point); repeat as needed.",
        "X,Y",
        read_points,
        label="Excluded clicks",
        flag="--exclude",
        key="exclude",
        repeated=True,
    ),
    SelectionField("box", "A box around the object, in pixels.", "X0,Y0,X1,Y1", read_box),
    SelectionField(
        "text",
        'The object in words ("the red car"); needs a segmenter with a detector.',
        "TEXT",
        _read_text,
        label="…or the object to remove, in words (Enter)",
        flag="--object",
        key="object",
    ),
    SelectionField(
        "segmenter",
        "Who turns the selection into a mask: {segmenters}.",
        "SPEC",
        read_spec,
        http=False,
    ),
    SelectionField(
        "top_k",
        "With an object in words (needed): only the K best-scoring matches (default: every match, united).",
        "K",
        read_top_k,
        http=False,
        manifest=False,
    ),
)
#: the fields' names, in order: the attributes of :class:`SelectionRequest`
SELECTION_FIELD_NAMES: tuple[str, ...] = tuple(field.name for field in SELECTION_FIELDS)
#: the fields that select something; the others (segmenter, top_k) only say how
SELECTING_FIELDS: tuple[str, ...] = ("points", "negative_points", "box", "text")


def selection_field(name: str) -> SelectionField:
    """The field called ``name`` (a keyword of ``select_object``)."""
    for field in SELECTION_FIELDS:
        if field.name == name:
            return field
    raise KeyError(f"no selection field {name!r}; the fields are {', '.join(SELECTION_FIELD_NAMES)}")


#: the names of points, negative points and box in messages of a command line: the options without dashes
_OPTION_NAMES = tuple(selection_field(name).option.removeprefix("--") for name in SELECTING_FIELDS[:3])


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
        top_k: int | str | None = None,
        *,
        names: tuple[str, str, str] | None = None,
    ) -> SelectionRequest | None:
        """The request from strings (``"X,Y"`` each, or one ``"X,Y;X,Y"``; ``"X0,Y0,X1,Y1"``), or ``None``
        when nothing is selected. ``names`` are the user's names of the first three fields, for messages
        (default: their command-line options without the dashes, ``point``, ``exclude``, ``box``)."""
        values = (points, negative_points, box, text, segmenter, top_k)
        given = dict(zip(SELECTION_FIELD_NAMES, values, strict=True))
        arguments = dict(zip(SELECTING_FIELDS[:3], names or _OPTION_NAMES, strict=True))
        request = cls(
            **{
                field.name: field.parse(given[field.name], arguments.get(field.name, field.name))
                for field in SELECTION_FIELDS
            }
        )
        if not any(getattr(request, name) for name in SELECTING_FIELDS):
            for field in SELECTION_FIELDS:
                value = getattr(request, field.name)
                if field.name not in SELECTING_FIELDS and value is not None:
                    raise imaging.InputError(
                        field.name,
                        f"{value!r} is given but nothing to select: add a point, a box or an object",
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
