"""A batch item and the columns a manifest may have: what the folder and manifest readers both build."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import imaging
from ..selection import SELECTION_FIELDS, surface_names
from ..settings import KNOB_NAMES, KNOBS, METHODS, STRATEGIES, RemovalOptions

#: image files a folder source picks up (case-insensitive); outputs use the same extension when it is
#: one :func:`imaging.save_image` writes, else ``.png`` is appended
IMAGE_SUFFIXES = frozenset({*imaging.SAVE_FORMATS, ".gif", ".jfif"})


def _choice(name: str, choices: Sequence[str]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"{name}={value!r} must be one of {', '.join(choices)}")
        return text

    return parse


def _boolean(name: str) -> Callable[[Any], bool]:
    def parse(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "y"):
            return True
        if text in ("0", "false", "no", "n"):
            return False
        raise ValueError(f"{name}={value!r} must be true or false")

    return parse


#: manifest columns that set a :class:`RemovalOptions` field other than a knob -> parser of the cell
OPTION_COLUMNS: dict[str, Callable[[Any], Any]] = {
    "method": _choice("method", METHODS),
    "strategy": _choice("strategy", STRATEGIES),
    "paste_back": _boolean("paste_back"),
    "fast": _boolean("fast"),
}
#: every per-item setting a manifest may give: the knobs (parsed and checked by each :class:`Knob`), then
#: :data:`OPTION_COLUMNS`
SETTING_COLUMNS: dict[str, Callable[[Any], Any]] = {
    **{knob.name: knob.parse for knob in KNOBS},
    **OPTION_COLUMNS,
}
#: manifest columns that select the object instead of (or besides) a mask, from the selection schema: each
#: field's public name (``points``, ``negative_points``, ``box``, ``object``, ``segmenter``), then the older
#: names still read (``exclude``)
SELECTION_COLUMNS = surface_names("manifest")
#: the selection columns that may hold coordinates: text, or in JSONL a list of numbers
_COORDINATE_COLUMNS = frozenset(
    name for field in SELECTION_FIELDS if field.manifest and field.coordinates for name in field.names
)
MANIFEST_COLUMNS = frozenset({"image", "mask", "output", "seed", *SETTING_COLUMNS, *SELECTION_COLUMNS})


# --------------------------------------------------------------------------------------------------
# Items


@dataclass(frozen=True)
class BatchItem:
    """One removal to do. ``id`` is the output path relative to OUT_DIR (POSIX separators)."""

    id: str
    image: Path
    mask: Path | None
    output: Path
    seed: int
    #: per-item settings overriding the command line's (:data:`SETTING_COLUMNS` names), sorted by name
    knobs: tuple[tuple[str, Any], ...] = ()
    #: a problem found while listing (no mask, a bad manifest cell, an output clash): the item fails
    error: str | None = None
    #: the manifest's selection columns (clicks, a box, words), united with the mask when both are given
    selection: Any = None

    def settings(self, options: RemovalOptions) -> RemovalOptions:
        """The run's options with this item's overrides: knobs merged, other fields replaced."""
        overrides = dict(self.knobs)
        knobs = {name: value for name, value in overrides.items() if name in KNOB_NAMES}
        fields = {name: value for name, value in overrides.items() if name not in KNOB_NAMES}
        return replace(options.with_knobs(knobs), **fields) if fields else options.with_knobs(knobs)


def item_seed(item_id: str, base_seed: int) -> int:
    """A seed in [0, 2**32) that depends only on the item's id and the base seed (not order, not sharding)."""
    digest = hashlib.sha256(f"{base_seed}\0{item_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _output_relative(relative: Path) -> Path:
    """The output path of an input at ``relative``: its name if we write its format, else ``.png`` added."""
    if relative.suffix.lower() in imaging.SAVE_FORMATS:
        return relative
    return relative.with_name(relative.name + ".png")


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def inside(path: Path, folder: Path) -> bool:
    """True when ``path`` (links resolved) lies in ``folder``."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True
