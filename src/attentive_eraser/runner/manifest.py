"""Reading a CSV or JSONL manifest: one cell parser for both, and a bad cell or row fails only its row."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import imaging
from ..selection import SelectionRequest
from ..settings import check_seed
from .items import (
    _COORDINATE_COLUMNS,
    MANIFEST_COLUMNS,
    SELECTION_COLUMNS,
    SETTING_COLUMNS,
    BatchItem,
    _output_relative,
    inside,
    item_seed,
)

PATH_COLUMNS = ("image", "mask", "output")
#: the longest cell a manifest may hold (PATH_MAX, the longest path): anything longer is a mistake
MAX_CELL_CHARACTERS = 4096


def _shown(value: Any) -> str:
    """``repr(value)`` cut to 60 characters: an error names a bad cell without repeating all of it."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _coordinates(column: str, value: Any) -> str:
    """A cell of clicks or a box as the selection's text form (``"X,Y;X,Y"``, ``"X0,Y0,X1,Y1"``); JSONL
    may give ``[[x, y], ...]`` or ``[x0, y0, x1, y1]``."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:

        def number(entry: Any) -> str:
            if isinstance(entry, bool) or not isinstance(entry, (int, float)):
                raise ValueError(f"{column}={_shown(value)} must hold numbers")
            return str(entry)

        if all(isinstance(entry, list) for entry in value):
            return ";".join(",".join(number(coordinate) for coordinate in entry) for entry in value)
        return ",".join(number(entry) for entry in value)
    raise ValueError(f"{column}={_shown(value)} must be text or a list of numbers")


def parse_cell(column: str, value: Any) -> Any:
    """The value of one manifest cell, CSV text or a JSONL value alike; ``ValueError`` naming the column and
    the value (shortened) for anything else, so that a bad cell fails its row and only its row.

    Paths and words must be text without NUL bytes; ``seed`` follows :func:`settings.check_seed` (the rule
    of ``remove``); a setting column its knob's or option's parser; selection coordinates text or lists.
    """
    if isinstance(value, str):
        if len(value) > MAX_CELL_CHARACTERS:
            raise ValueError(f"{column}: a cell of {len(value)} characters (at most {MAX_CELL_CHARACTERS})")
        if "\0" in value:
            raise ValueError(f"{column}={_shown(value)} contains a NUL byte")
    try:
        if column in PATH_COLUMNS or (column in SELECTION_COLUMNS and column not in _COORDINATE_COLUMNS):
            if not isinstance(value, str):
                raise ValueError(f"{column}={_shown(value)} must be text")
            return value.strip()
        if column == "seed":
            return check_seed(value, "seed")
        if column in SETTING_COLUMNS:
            return SETTING_COLUMNS[column](value)
        if column in _COORDINATE_COLUMNS:
            return _coordinates(column, value)
    except (TypeError, ArithmeticError, RecursionError):  # e.g. a JSON number too large for a float
        raise ValueError(f"{column}={_shown(value)} is not a valid value") from None
    raise ValueError(f"unknown column {column!r}")


class _RepeatedKey(ValueError):
    """A JSON object that repeats a key (``json`` would keep the last value silently)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise _RepeatedKey(f"repeats the key(s) {repeated}")
    return dict(pairs)


#: a row of a manifest: its values by column, or why it cannot be read (that row fails)
Row = dict[str, Any] | str


def _json_integer(text: str) -> int | float:
    """A JSON integer; one of more digits than Python converts (4300) is a number out of every range, read
    as infinity like ``1e999``: a bad cell that fails its row, not a line that is not JSON."""
    try:
        return int(text)
    except ValueError:
        return float("-inf") if text.startswith("-") else float("inf")


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[int, Row]]:
    # io.StringIO splits lines on \n and \r only (str.splitlines would also split on U+2028 in a string)
    for number, line in enumerate(io.StringIO(text, newline=""), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, object_pairs_hook=_unique_keys, parse_int=_json_integer)
        except _RepeatedKey as repeated:
            yield number, str(repeated)
            continue
        except (ValueError, RecursionError) as error:  # JSONDecodeError, nesting too deep
            raise imaging.InputError(
                "source", f"{path.name} line {number} is not JSON: {' '.join(str(error).split())[:200]}"
            ) from None
        if not isinstance(row, dict):
            raise imaging.InputError("source", f"{path.name} line {number} is not a JSON object")
        yield number, row


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, Row]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, [])
    except csv.Error as error:
        raise imaging.InputError(
            "source", f"{path.name}: the header row is not CSV ({' '.join(str(error).split())})"
        ) from None
    names = [name.strip() for name in header]
    if "image" not in names:
        raise imaging.InputError("source", f"{path.name}: the CSV needs a header row with an 'image' column")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:  # which one would count is a guess: refuse the manifest, naming the column
        raise imaging.InputError(
            "source", f"{path.name}: the header repeats the column(s) {repeated}; keep one of each"
        )
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:  # e.g. a cell over the csv module's 131072 characters
            yield reader.line_num, f"not a CSV row ({' '.join(str(error).split())})"
            continue
        if not cells:
            continue  # a blank line
        if len(cells) > len(names):
            yield reader.line_num, f"{len(cells)} cells, but the header has {len(names)} columns"
            continue
        yield reader.line_num, dict(zip(names, cells, strict=False))  # missing trailing cells: not set


def _manifest_rows(path: Path) -> Iterator[tuple[int, Row]]:
    """``(line number, row)`` of a CSV (with a header) or JSONL manifest; a row that cannot be read comes
    as the reason (its row fails). A manifest that cannot be read as a whole raises ``InputError``."""
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".csv"):
        raise imaging.InputError(
            "source", f"{str(path)!r}: a manifest must be .csv or .jsonl, or give a folder"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise imaging.InputError("source", f"cannot read the manifest {str(path)!r}: {error}") from error
    yield from (_csv_rows if suffix == ".csv" else _jsonl_rows)(path, text)


def items_from_manifest(
    manifest: Path,
    out_dir: Path,
    *,
    masks: Path | None = None,
    base_seed: int = 123,
    fixed_seed: bool = False,
) -> list[BatchItem]:
    """The items of a CSV/JSONL manifest; relative paths are relative to the manifest's folder.

    Columns: ``image`` (required), ``mask`` (else ``masks``, one mask file for all), ``output`` (relative
    to OUT_DIR; default the image's path relative to the manifest's folder), ``seed``, any of
    :data:`SETTING_COLUMNS` and :data:`SELECTION_COLUMNS`. An unknown or repeated column is refused (a typo
    would silently be ignored otherwise); a bad cell (:func:`parse_cell`), too many cells or a row the
    reader cannot read fail their item only, naming the line.
    """
    root = manifest.parent
    if masks is not None and not masks.is_file():
        raise imaging.InputError(
            "masks", f"with a manifest, --masks must be one mask file; {str(masks)!r} is not"
        )
    items = []
    for number, row in _manifest_rows(manifest):
        if isinstance(row, str):
            items.append(_unreadable_row(manifest, out_dir, number, row, base_seed))
            continue
        unknown = sorted(set(row) - MANIFEST_COLUMNS)
        if unknown:
            raise imaging.InputError(
                "source",
                f"{manifest.name} line {number}: unknown column(s) {unknown}; "
                f"known: {sorted(MANIFEST_COLUMNS)}",
            )
        cells: dict[str, Any] = {}
        error: str | None = None
        for column, value in row.items():
            if value is None or (isinstance(value, str) and not value.strip()):
                continue  # an empty cell: not set
            try:
                cells[column] = parse_cell(column, value)
            except ValueError as bad:
                error = error or f"manifest line {number}: {' '.join(str(bad).split())}"
        if "image" not in cells:
            if error is None:
                error = f"manifest line {number}: no image"
            items.append(_unreadable_row(manifest, out_dir, number, error, base_seed, cells.get("output")))
            continue
        image = root / cells["image"]
        mask = root / cells["mask"] if "mask" in cells else masks
        selection, problem = _selection_of(cells, number)
        error = error or problem
        # no mask and no selection: the image's transparent pixels are the object (refused if it has none)
        if "output" in row and "output" not in cells and error is not None:
            output_relative = Path(f"{manifest.name} line {number}")  # a bad output cell: named by its line
        elif "output" in cells:
            output_relative = Path(cells["output"])
            if error is None and (output_relative.is_absolute() or ".." in output_relative.parts):
                error = (
                    f"manifest line {number}: output {str(output_relative)!r} must be a relative path "
                    "inside OUT_DIR"
                )
            elif error is None and output_relative.suffix.lower() not in imaging.SAVE_FORMATS:
                error = (
                    f"manifest line {number}: output {str(output_relative)!r} needs one of the "
                    f"extensions {', '.join(imaging.SAVE_FORMATS)}"
                )
        else:
            relative = (
                image.relative_to(root)
                if inside(image, root) and not image.is_absolute()
                else Path(image.name)
            )
            output_relative = _output_relative(relative)
        item_id = output_relative.as_posix()
        if "seed" in cells:
            seed = cells["seed"]
        else:
            seed = base_seed if fixed_seed else item_seed(item_id, base_seed)
        settings = {name: value for name, value in cells.items() if name in SETTING_COLUMNS}
        items.append(
            BatchItem(
                item_id,
                image,
                mask,
                out_dir / output_relative,
                seed,
                tuple(sorted(settings.items())),
                error,
                selection,
            )
        )
    return items


def _unreadable_row(
    manifest: Path, out_dir: Path, number: int, reason: str, seed: int, output: str | None = None
) -> BatchItem:
    """A failed item for a row without a usable image: named by its ``output`` cell when it has a valid
    one, else by its line (``jobs.csv line 7``: no writable extension, so never an output's id)."""
    reason = reason if reason.startswith("manifest line ") else f"manifest line {number}: {reason}"
    relative = Path(output) if output else None
    if relative is None or relative.is_absolute() or ".." in relative.parts:
        relative = Path(f"{manifest.name} line {number}")
    # the manifest stands for the image: the row names none that could be read
    return BatchItem(relative.as_posix(), manifest, None, out_dir / relative, seed, error=reason)


def _selection_of(cells: dict[str, Any], number: int) -> tuple[SelectionRequest | None, str | None]:
    """The row's selection from its :data:`SELECTION_COLUMNS` (clicks ``"X,Y;X,Y"``, a box
    ``"X0,Y0,X1,Y1"``, words, a segmenter spec; as :func:`parse_cell` gives them), and a problem, if any."""
    if not any(column in cells for column in SELECTION_COLUMNS):
        return None, None
    try:
        request = SelectionRequest.of_names(cells)
    except (ValueError, TypeError) as problem:
        return None, f"manifest line {number}: {' '.join(str(problem).split())}"
    return request, None
