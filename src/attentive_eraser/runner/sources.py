"""What a batch run reads: the items of a folder or a manifest, their seeds, and the outputs they may write.

A folder source pairs each image with its mask by a naming pattern (or one mask for every image); a
manifest (CSV or JSONL) names them, with optional ``output``, ``seed``, selection columns and per-item
settings: a column per knob of :data:`attentive_eraser.settings.KNOBS` (each cell parsed by the knob) and
the :data:`OPTION_COLUMNS`. Listing also fails, item by item, outputs that would overwrite an input of the
run, escape OUT_DIR or repeat another item's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from .. import imaging
from ..imaging.save import ProtectedFiles

# the item and the manifest reader live in their own modules; the names stay importable from here
from .items import (  # noqa: F401 -- re-exported
    IMAGE_SUFFIXES,
    MANIFEST_COLUMNS,
    OPTION_COLUMNS,
    SELECTION_COLUMNS,
    SETTING_COLUMNS,
    BatchItem,
    _is_hidden,
    _output_relative,
    inside,
    item_seed,
)
from .manifest import MAX_CELL_CHARACTERS, PATH_COLUMNS, items_from_manifest, parse_cell  # noqa: F401


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
