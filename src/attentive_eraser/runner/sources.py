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
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import imaging
from ..imaging.save import ProtectedFiles
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
#: manifest columns that select the object instead of (or besides) a mask (attentive_eraser.selection)
SELECTION_COLUMNS = ("points", "exclude", "box", "object", "segmenter")
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


def _manifest_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` of a CSV (with a header) or JSONL manifest."""
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise imaging.InputError("source", f"cannot read the manifest {str(path)!r}: {error}") from error
    if suffix in (".jsonl", ".ndjson"):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise imaging.InputError(
                    "source", f"{path.name} line {number} is not JSON: {error}"
                ) from None
            if not isinstance(row, dict):
                raise imaging.InputError("source", f"{path.name} line {number} is not a JSON object")
            yield number, row
    elif suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None or "image" not in [name.strip() for name in reader.fieldnames]:
            raise imaging.InputError(
                "source", f"{path.name}: the CSV needs a header row with an 'image' column"
            )
        for number, row in enumerate(reader, start=2):
            yield number, {key.strip(): value for key, value in row.items() if key is not None}
    else:
        raise imaging.InputError(
            "source", f"{str(path)!r}: a manifest must be .csv or .jsonl, or give a folder"
        )


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
    :data:`SETTING_COLUMNS` and :data:`SELECTION_COLUMNS`. An unknown column is refused (a typo would
    silently be ignored otherwise); a bad cell fails its item only, naming the column.
    """
    root = manifest.parent
    if masks is not None and not masks.is_file():
        raise imaging.InputError(
            "masks", f"with a manifest, --masks must be one mask file; {str(masks)!r} is not"
        )
    items = []
    for number, row in _manifest_rows(manifest):
        unknown = sorted(set(row) - MANIFEST_COLUMNS)
        if unknown:
            raise imaging.InputError(
                "source",
                f"{manifest.name} line {number}: unknown column(s) {unknown}; "
                f"known: {sorted(MANIFEST_COLUMNS)}",
            )
        row = {key: value for key, value in row.items() if value is not None and str(value).strip() != ""}
        if "image" not in row:
            raise imaging.InputError("source", f"{manifest.name} line {number}: no image")
        image = root / str(row["image"]).strip()
        mask = root / str(row["mask"]).strip() if "mask" in row else masks
        selection, problem = _selection_of(row, manifest.name, number)
        error = (
            None
            if mask is not None or selection is not None
            else ("no mask: the manifest row has none and --masks was not given")
        )
        error = problem or error
        if "output" in row:
            output_relative = Path(str(row["output"]).strip())
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
        settings = {}
        try:
            seed = (
                int(row["seed"])
                if "seed" in row
                else (base_seed if fixed_seed else item_seed(item_id, base_seed))
            )
            if seed < 0:
                raise ValueError(f"seed={seed} must be >= 0")
            for name, parse in SETTING_COLUMNS.items():
                if name in row:
                    settings[name] = parse(row[name])
        except ValueError as problem:
            seed = base_seed
            error = error or f"manifest line {number}: {' '.join(str(problem).split())}"
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


def _selection_of(row: dict[str, Any], name: str, number: int) -> tuple[Any, str | None]:
    """The row's selection (``points``/``exclude``: ``"X,Y;X,Y"`` or JSON ``[[x, y], ...]``; ``box``:
    ``"X0,Y0,X1,Y1"`` or a JSON list; ``object``: words; ``segmenter``: a spec), and a problem, if any."""
    if not any(column in row for column in SELECTION_COLUMNS):
        return None, None
    from ..selection import SelectionRequest

    def text(value: Any) -> str:
        if isinstance(value, (list, tuple)):  # JSONL: [[x, y], ...] or [x0, y0, x1, y1]
            if value and all(isinstance(entry, (list, tuple)) for entry in value):
                return ";".join(",".join(str(number) for number in entry) for entry in value)
            return ",".join(str(number) for number in value)
        return str(value)

    try:
        request = SelectionRequest.parse(
            text(row.get("points", "")),
            text(row.get("exclude", "")),
            text(row["box"]) if "box" in row else None,
            str(row["object"]) if "object" in row else None,
            str(row["segmenter"]) if "segmenter" in row else None,
            names=("points", "exclude", "box"),
        )
    except ValueError as problem:
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
