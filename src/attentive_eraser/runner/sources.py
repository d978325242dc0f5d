"""What a batch run reads: the items of a folder or a manifest, their seeds, and the outputs they may write.

A folder source pairs each image with its mask by a naming pattern (or one mask for every image); a
manifest (CSV or JSONL) names them, with optional ``output``, ``seed``, selection columns and per-item
settings: a column per knob of :data:`attentive_eraser.settings.KNOBS` (each cell parsed by the knob) and
the :data:`OPTION_COLUMNS`. Listing also fails, item by item, outputs that would overwrite an input of the
run, escape OUT_DIR or repeat another item's.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import imaging
from ..imaging.save import ProtectedFiles
from ..selection import SELECTION_FIELDS, SelectionRequest, surface_names
from ..settings import KNOB_NAMES, KNOBS, METHODS, STRATEGIES, RemovalOptions, check_seed

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


def _find_mask(
    pattern: str, folder: Path, image: Path, exclude: Path
) -> tuple[Path | None, str | None, list[Path]]:
    """The mask of ``image`` in ``folder`` named by ``pattern`` (``{stem}``, ``{name}``, ``{suffix}``, globs).

    Returns ``(mask, error, candidates)``: ``candidates`` are every file the pattern matched (several when
    it is ambiguous); none of them is an image of its own.
    """
    try:
        name = pattern.format(stem=image.stem, name=image.name, suffix=image.suffix)
    except (KeyError, IndexError, ValueError) as error:
        raise imaging.InputError(
            "mask-pattern",
            f"{pattern!r} is not a valid pattern ({error!r}); use {{stem}}, {{name}} or {{suffix}}",
        ) from None
    if not any(character in name for character in "*?["):
        candidate = folder / name
        if candidate.is_file():
            return candidate, None, [candidate]
        return None, f"no mask: {str(candidate)!r} not found", []
    matches = sorted(
        path
        for path in folder.glob(name)
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and path.resolve() != exclude.resolve()
    )
    if not matches:
        return None, f"no mask matches {str(folder / name)!r}", []
    if len(matches) > 1:
        listed = ", ".join(repr(str(path)) for path in matches)
        return None, f"ambiguous mask: {listed} match {name!r}; keep one, or give --mask-pattern", matches
    return matches[0], None, matches


def items_from_folder(
    folder: Path,
    out_dir: Path,
    *,
    masks: Path | None = None,
    mask_pattern: str | None = None,
    base_seed: int = 123,
    fixed_seed: bool = False,
) -> list[BatchItem]:
    """Every image under ``folder`` (recursively, hidden files and OUT_DIR excluded) and its mask.

    Masks: ``masks`` a file is the mask of every image; ``masks`` a folder mirrors ``folder``'s tree, with
    names given by ``mask_pattern`` (default ``{stem}.*``); without ``masks`` each mask lies beside its
    image (default pattern ``{stem}_mask.*``), and files that are some image's mask are not images.
    """
    one_mask = masks if masks is not None and masks.is_file() else None
    mask_root = masks if masks is not None and masks.is_dir() else None
    if masks is not None and one_mask is None and mask_root is None:
        raise imaging.InputError("masks", f"{str(masks)!r} is neither a mask file nor a folder of masks")
    pattern = mask_pattern or ("{stem}.*" if mask_root is not None else "{stem}_mask.*")
    candidates = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if (
            path.is_file()
            and path.suffix.lower() in IMAGE_SUFFIXES
            and not _is_hidden(relative)
            and not inside(path, out_dir)
            and not (mask_root is not None and inside(path, mask_root))
        ):
            candidates.append(relative)
    found: dict[Path, tuple[Path | None, str | None, list[Path]]] = {}
    for relative in candidates:
        image = folder / relative
        if one_mask is not None:
            found[relative] = (one_mask, None, [one_mask])
        else:
            base = (mask_root if mask_root is not None else folder) / relative.parent
            found[relative] = _find_mask(pattern, base, image, exclude=image)
    # every file a pattern matched is a mask, not an image: also the candidates of an ambiguous match
    used = {path.resolve() for _, _, matched in found.values() for path in matched}
    items = []
    for relative in candidates:
        image = folder / relative
        if image.resolve() in used:
            continue  # a mask, not an image
        mask, error, _ = found[relative]
        output_relative = _output_relative(relative)
        item_id = output_relative.as_posix()
        seed = base_seed if fixed_seed else item_seed(item_id, base_seed)
        items.append(BatchItem(item_id, image, mask, out_dir / output_relative, seed, error=error))
    return items


# --------------------------------------------------------------------------------------------------
# Manifests: rows, and one parser of cells for CSV and JSONL alike

#: manifest columns that name files (text, relative to the manifest's folder or OUT_DIR)
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


def list_items(
    source: Path,
    out_dir: Path,
    *,
    masks: Path | None = None,
    mask_pattern: str | None = None,
    base_seed: int = 123,
    fixed_seed: bool = False,
) -> list[BatchItem]:
    """The items of a folder or manifest SOURCE, sorted by id; a repeated output fails all but the first."""
    if source.is_dir():
        items = items_from_folder(
            source,
            out_dir,
            masks=masks,
            mask_pattern=mask_pattern,
            base_seed=base_seed,
            fixed_seed=fixed_seed,
        )
    elif source.is_file():
        if mask_pattern is not None:
            raise imaging.InputError(
                "mask-pattern", "only applies to a folder SOURCE (a manifest names its masks)"
            )
        items = items_from_manifest(source, out_dir, masks=masks, base_seed=base_seed, fixed_seed=fixed_seed)
    else:
        raise imaging.InputError("source", f"{str(source)!r} does not exist")
    items.sort(key=lambda item: item.id)
    protected = input_files(items, [source if source.is_file() else None, masks])
    first: dict[str, BatchItem] = {}
    unique = []
    for item in items:
        if item.id in first:
            other = first[item.id]
            item = replace(
                item,
                error=f"output {item.id!r} is also the output of {str(other.image)!r}; "
                "give each row its own output",
            )
        else:
            first[item.id] = item
            problem = None if item.error is not None else _output_problem(item, out_dir, protected)
            if problem is not None:
                item = replace(item, error=problem)
        unique.append(item)
    return unique


# --------------------------------------------------------------------------------------------------
# Inputs are never written: file identities and output checks


def file_key(path: Path) -> tuple[str, tuple[int, int] | None]:
    """What identifies a file: its resolved path, and its (device, inode) when it exists."""
    resolved = path.resolve()
    try:
        stat = resolved.stat()
    except OSError:
        return str(resolved), None
    return str(resolved), (stat.st_dev, stat.st_ino)


def input_files(items: Sequence[BatchItem], others: Sequence[Path | None] = ()) -> ProtectedFiles:
    """Every file the run reads (each item's image and mask, and those of ``others`` that are files, such
    as the manifest and a ``--masks`` file), by resolved path and by inode: never written or deleted."""
    paths = [path for item in items for path in (item.image, item.mask) if path is not None]
    paths += [path for path in others if path is not None and path.is_file()]
    return ProtectedFiles(paths)


def protected_source(path: Path, protected: ProtectedFiles) -> Path | None:
    """The input file that ``path`` names (by resolved path or inode), if any."""
    return protected.find(path)


def _name_too_long(path: Path) -> str | None:
    """A problem when a name of ``path`` is longer than file systems allow (255 bytes, and the temp suffix).

    A per-item, write-free form of the name check of :func:`imaging.check_output_path` (which also probes
    the folder, once per run for the report and OUT_DIR).
    """
    for part in path.parts:
        limit = 255 - (len(".") + 1 + 12 + len(".tmp") if part == path.name else 0)
        if len(os.fsencode(part)) > limit:
            shown = part if len(part) <= 40 else part[:37] + "..."
            return f"output: the name {shown!r} is too long ({len(os.fsencode(part))} bytes; at most {limit})"
    return None


def _output_problem(item: BatchItem, out_dir: Path, protected: ProtectedFiles) -> str | None:
    """Why ``item``'s output must not be written: too long a name, outside OUT_DIR (through a symbolic
    link), or an input of the run (any item's image or mask, the manifest)."""
    too_long = _name_too_long(item.output)
    if too_long is not None:
        return too_long
    try:
        escapes = not inside(item.output, out_dir)
        source = protected_source(item.output, protected)
    except OSError as error:
        return f"output: cannot use {str(item.output)!r}: {' '.join(str(error).split())}"
    if escapes:
        return (
            f"output {item.id!r} resolves to {str(item.output.resolve())!r}, outside OUTPUT_DIR "
            "(a symbolic link inside it); refusing to write there"
        )
    if source is not None:
        return f"output {item.id!r} is the input file {str(source)!r}; an input is never overwritten"
    return None
