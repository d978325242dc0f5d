"""The selection fields, defined once, and :class:`SelectionRequest`, a selection as typed by a user.

Each :class:`SelectionField` names one field everywhere it appears, with one public name on every surface
— the keyword of :func:`attentive_eraser.remove`, the HTTP parameter of ``/remove``, the manifest column —
and its command-line flag, the older names every surface still accepts (``aliases``), the web page's
control, its help text and the parser that reads it from text, as :class:`attentive_eraser.settings.Knob`
does for the removal knobs. The command-line options, the HTTP parameters and the manifest columns are
derived from :data:`SELECTION_FIELDS`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image

from .. import imaging
from .prompts import Box, Point, check_text, read_box, read_points, read_spec, read_top_k
from .registry import select_object, spec_help


@dataclass(frozen=True)
class SelectionField:
    """One field of a selection.

    ``name`` is the keyword of ``select_object`` and the attribute of :class:`SelectionRequest` (inside
    the package); ``public`` the field's one name on every surface (default the name): ``remove()``'s
    keyword, the HTTP parameter, the manifest column. ``flag`` is the command-line option (default
    ``--`` + the public name with dashes); ``aliases`` are other names of the field that every surface
    accepts too (as parameters and columns, and as flags ``--`` + the alias with dashes), so that names
    of earlier versions keep working. ``parse(value, argument)`` reads the field from what a surface gives
    (text; for a ``repeated`` option, a list of texts), ``argument`` naming it in messages, and gives
    ``None`` or ``()`` when it is blank; ``coordinates`` says that a list of numbers may stand for the
    text (JSON's ``[[x, y], ...]``, ``[x0, y0, x1, y1]``). ``http``/``manifest`` say whether those
    surfaces take the field. ``label`` is the web page control's label (``""``: the page has none).
    ``help`` may hold ``{segmenters}``, which :meth:`describe` fills with the registered segmenter kinds,
    and ``{<field name>}``, which it fills with that field's name on the surface that shows the help.
    """

    name: str
    help: str
    metavar: str
    parse: Callable[[Any, str], Any]
    label: str = ""
    public: str | None = None
    flag: str | None = None
    aliases: tuple[str, ...] = ()
    repeated: bool = False
    coordinates: bool = False
    http: bool = True
    manifest: bool = True

    @property
    def public_name(self) -> str:
        """The field's name on every surface, e.g. ``negative_points``, ``object``."""
        return self.public or self.name

    @property
    def names(self) -> tuple[str, ...]:
        """Every name a surface takes for the field: the public name, then the aliases."""
        return (self.public_name, *self.aliases)

    @property
    def option(self) -> str:
        """The command-line flag, e.g. ``--point``."""
        return self.flag or "--" + self.public_name.replace("_", "-")

    @property
    def options(self) -> tuple[str, ...]:
        """Every command-line flag of the field: :attr:`option`, then one per alias (``--exclude``)."""
        return (self.option, *("--" + alias.replace("_", "-") for alias in self.aliases))

    def describe(self, names: Mapping[str, str] | None = None) -> str:
        """The help text, with the segmenter kinds registered now and each field named as ``names`` says
        (a field's name -> its name on the surface; default: the public names)."""
        shown = {field.name: field.public_name for field in SELECTION_FIELDS}
        if names is not None:
            shown.update(names)
        segmenters = spec_help() if "{segmenters}" in self.help else ""
        return self.help.format(segmenters=segmenters, **shown)


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
        coordinates=True,
    ),
    SelectionField(
        "negative_points",
        "A click on what must stay (a negative point); repeat as needed.",
        "X,Y",
        read_points,
        label="Excluded clicks",
        flag="--negative-point",
        aliases=("exclude",),
        repeated=True,
        coordinates=True,
    ),
    SelectionField("box", "A box around the object, in pixels.", "X0,Y0,X1,Y1", read_box, coordinates=True),
    SelectionField(
        "text",
        'The object in words ("the red car"); needs a {segmenter} with a detector.',
        "TEXT",
        _read_text,
        label="…or the object to remove, in words (Enter)",
        public="object",
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
        "With {text} (needed): only the K best-scoring matches (default: every match, united).",
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
    """The field called ``name``: its name inside the package (a keyword of ``select_object``), its
    public name or one of its aliases."""
    for field in SELECTION_FIELDS:
        if name == field.name or name in field.names:
            return field
    known = ", ".join(
        name for field in SELECTION_FIELDS for name in dict.fromkeys((field.name, *field.names))
    )
    raise KeyError(f"no selection field {name!r}; the fields are {known}")


def surface_names(surface: Literal["http", "manifest"]) -> tuple[str, ...]:
    """The names a surface takes (``"http"``: ``/remove``'s parameters, ``"manifest"``: its columns): the
    public name of each field it takes, in the schema's order, then their aliases."""
    fields = [field for field in SELECTION_FIELDS if getattr(field, surface)]
    return (*(field.public_name for field in fields), *(alias for field in fields for alias in field.aliases))


def _blank(value: Any) -> bool:
    """A value that sets nothing: missing, blank text, an empty list."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, (list, tuple)) and not value


#: the names of the fields in messages of a command line: the options without dashes
_OPTION_NAMES = tuple(field.option.removeprefix("--") for field in SELECTION_FIELDS)
#: the names an ``InputError`` of ``select_object`` gives -> the fields' public names, where they differ
_PUBLIC_NAMES = {field.name: field.public_name for field in SELECTION_FIELDS if field.public}


@dataclass(frozen=True)
class SelectionRequest:
    """A selection as typed on a command line, in a batch manifest or in a web form (pixels of the image).

    Build it with :meth:`parse` (strings, by position), :meth:`of_names` (strings, by the surfaces' names)
    or directly; :meth:`select` runs :func:`select_object`.
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
        names: Sequence[str] | None = None,
    ) -> SelectionRequest | None:
        """The request from strings (``"X,Y"`` each, or one ``"X,Y;X,Y"``; ``"X0,Y0,X1,Y1"``), or ``None``
        when nothing is selected. ``names`` are the user's names of the first fields, in order, for
        messages (default, and for the fields after them: the command-line options without the dashes,
        ``point``, ``negative-point``, ``box``, ``object``, ``segmenter``, ``top-k``)."""
        values = (points, negative_points, box, text, segmenter, top_k)
        given = dict(zip(SELECTION_FIELD_NAMES, values, strict=True))
        shown = (*(names or ()), *_OPTION_NAMES[len(names or ()) :])
        return cls._of(given, dict(zip(SELECTION_FIELD_NAMES, shown, strict=True)))

    @classmethod
    def of_names(cls, values: Mapping[str, Any]) -> SelectionRequest | None:
        """The request from text keyed by the fields' public names or aliases (an HTTP request's
        parameters, a manifest row's cells), or ``None`` when nothing is selected; other keys are ignored.

        A missing or blank value sets nothing; a field given under two of its names (``negative_points``
        and ``exclude``) is refused. Messages name each field as the user did.
        """
        given: dict[str, Any] = {}
        arguments: dict[str, str] = {}
        for field in SELECTION_FIELDS:
            keys = [name for name in field.names if not _blank(values.get(name))]
            if len(keys) > 1:
                raise imaging.InputError(
                    keys[0],
                    f"{' and '.join(keys)} are one field ({field.public_name}) given twice; give one",
                )
            if keys:
                given[field.name], arguments[field.name] = values[keys[0]], keys[0]
        return cls._of(given, arguments)

    @classmethod
    def _of(cls, given: Mapping[str, Any], arguments: Mapping[str, str]) -> SelectionRequest | None:
        """The request from each field's value (``given``, by name; missing: not set), every field read by
        its parser and named ``arguments[name]`` (default its public name) in messages."""
        shown = {field.name: arguments.get(field.name, field.public_name) for field in SELECTION_FIELDS}
        request = cls(
            **{
                field.name: field.parse(given.get(field.name), shown[field.name])
                for field in SELECTION_FIELDS
            }
        )
        if not any(getattr(request, name) for name in SELECTING_FIELDS):
            for field in SELECTION_FIELDS:
                value = getattr(request, field.name)
                if field.name not in SELECTING_FIELDS and value is not None:
                    raise imaging.InputError(
                        shown[field.name],
                        f"{value!r} is given but nothing to select: add a point, a box or an object",
                    )
            return None
        return request

    def select(
        self, image: str | os.PathLike | Image.Image | np.ndarray, *, device: Any = None
    ) -> np.ndarray:
        """:func:`select_object` with this request's fields; a refusal names the field by its public name
        (``object``, not ``select_object``'s ``text``)."""
        try:
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
        except imaging.InputError as error:
            if error.argument not in _PUBLIC_NAMES:
                raise
            raise imaging.InputError(_PUBLIC_NAMES[error.argument], error.message) from error
