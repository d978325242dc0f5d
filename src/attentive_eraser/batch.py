"""Batch and distributed removal: ``attentive-eraser batch SOURCE -o OUT_DIR``.

SOURCE is a folder of images (masks found by a naming pattern, or one mask for every image) or a
manifest (CSV or JSONL: ``image``, ``mask``, optional ``output``, ``seed`` and per-item knobs). Every
output keeps its input's relative path, format, size, EXIF, ICC profile and alpha.

How a run is organised, so that it survives crashes and scales to many processes:

1. **Plan** (the main process only): list the items, sorted by id (the output path relative to OUT_DIR),
   cut to ``--limit``; an item whose output already exists and opens at the right size is *skipped*, a
   truncated output or a stale temporary file is removed and the item redone. The pending items are cut
   into batches of up to ``--batch-size`` items that share a size and settings.
2. **Split**: the plan is broadcast, and the batches are split between the processes
   (``PartialState.split_between_processes``). Batches are formed before the split, so every item meets
   the same batch-mates and gets the same result whatever the number of processes.
3. **Run**: each process writes its outputs atomically (``imaging.save_image``) and appends one JSON line per
   item to its own report part, flushed at once: a crash loses only the batch in flight.
4. **Merge**: after a barrier, the main process merges the parts into one JSONL report sorted by id.

Each item's seed is a hash of its id and ``--seed`` (or ``--seed`` itself with ``--fixed-seed``, or the
manifest's ``seed``): the same item gets the same noise whatever the order, the limit or the sharding.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import click
import numpy as np
from PIL import Image

from . import imaging
from .cli import RemovalOptions, _check_device, _input_errors, _quiet_third_party, main, removal_options

__all__ = [
    "BatchItem",
    "BatchPlan",
    "ItemResult",
    "KNOBS",
    "item_seed",
    "list_items",
    "items_from_folder",
    "items_from_manifest",
    "output_status",
    "make_plan",
    "make_batches",
    "run_batch",
    "plan_dry_run",
    "read_report",
    "batch_command",
    "check_report_path",
]

#: image files a folder source picks up (case-insensitive); outputs use the same extension when it is
#: one :func:`imaging.save_image` writes, else ``.png`` is appended
IMAGE_SUFFIXES = frozenset({*imaging.SAVE_FORMATS, ".gif", ".jfif"})

#: per-item settings a manifest may give (:class:`RemovalOptions` field -> parser of the cell)
KNOBS: dict[str, Any] = {
    "method": lambda v: _choice("method", v, ("sip", "dip")),
    "num_inference_steps": int,
    "strength": float,
    "removal_guidance_scale": float,
    "suppression_scale": float,
    "suppression_steps": int,
    "mask_dilation": int,
    "feather_radius": float,
    "resolution": int,
    "strategy": lambda v: _choice("strategy", v, ("resize", "crop")),
    "paste_back": lambda v: _boolean(v),
}
#: manifest columns that select the object instead of (or besides) a mask (attentive_eraser.selection)
SELECTION_COLUMNS = ("points", "exclude", "box", "object", "segmenter")
_MANIFEST_COLUMNS = frozenset({"image", "mask", "output", "seed", *KNOBS, *SELECTION_COLUMNS})
_ORIENTATION = 0x0112  # EXIF tag; the pixels are written upright, so it is reset to 1

Status = Literal["done", "skipped", "failed"]


def _choice(name: str, value: Any, choices: Sequence[str]) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise ValueError(f"{name}={value!r} must be one of {', '.join(choices)}")
    return text


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "y"):
        return True
    if text in ("0", "false", "no", "n"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


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
    #: per-item settings overriding the command line's (:data:`KNOBS` names), sorted by name
    knobs: tuple[tuple[str, Any], ...] = ()
    #: a problem found while listing (no mask, a bad manifest cell, an output clash): the item fails
    error: str | None = None
    #: the manifest's selection columns (clicks, a box, words), united with the mask when both are given
    selection: Any = None

    def settings(self, options: RemovalOptions) -> RemovalOptions:
        """The command line's settings with this item's overrides."""
        return replace(options, **dict(self.knobs))


def item_seed(item_id: str, base_seed: int) -> int:
    """A seed in [0, 2**32) that depends only on the item's id and the base seed (not on order or sharding)."""
    digest = hashlib.sha256(f"{base_seed}\0{item_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _output_relative(relative: Path) -> Path:
    """The output path for an input at ``relative``: same name if we can write its format, else ``.png`` added."""
    if relative.suffix.lower() in imaging.SAVE_FORMATS:
        return relative
    return relative.with_name(relative.name + ".png")


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _find_mask(
    pattern: str, folder: Path, image: Path, exclude: Path
) -> tuple[Path | None, str | None, list[Path]]:
    """The mask of ``image`` in ``folder`` named by ``pattern`` (``{stem}``, ``{name}``, ``{suffix}``; may glob).

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
            and not _inside(path, out_dir)
            and not (mask_root is not None and _inside(path, mask_root))
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
                raise imaging.InputError("source", f"{path.name} line {number} is not JSON: {error}") from None
            if not isinstance(row, dict):
                raise imaging.InputError("source", f"{path.name} line {number} is not a JSON object")
            yield number, row
    elif suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None or "image" not in [name.strip() for name in reader.fieldnames]:
            raise imaging.InputError("source", f"{path.name}: the CSV needs a header row with an 'image' column")
        for number, row in enumerate(reader, start=2):
            yield number, {key.strip(): value for key, value in row.items() if key is not None}
    else:
        raise imaging.InputError("source", f"{str(path)!r}: a manifest must be .csv or .jsonl, or give a folder")


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
    to OUT_DIR; default the image's path relative to the manifest's folder), ``seed`` and any of
    :data:`KNOBS`. An unknown column is refused (a typo would silently be ignored otherwise).
    """
    root = manifest.parent
    if masks is not None and not masks.is_file():
        raise imaging.InputError("masks", f"with a manifest, --masks must be one mask file; {str(masks)!r} is not")
    items = []
    for number, row in _manifest_rows(manifest):
        unknown = sorted(set(row) - _MANIFEST_COLUMNS)
        if unknown:
            raise imaging.InputError(
                "source",
                f"{manifest.name} line {number}: unknown column(s) {unknown}; "
                f"known: {sorted(_MANIFEST_COLUMNS)}",
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
                if _inside(image, root) and not image.is_absolute()
                else Path(image.name)
            )
            output_relative = _output_relative(relative)
        item_id = output_relative.as_posix()
        knobs = {}
        try:
            seed = (
                int(row["seed"])
                if "seed" in row
                else (base_seed if fixed_seed else item_seed(item_id, base_seed))
            )
            if seed < 0:
                raise ValueError(f"seed={seed} must be >= 0")
            for name, parse in KNOBS.items():
                if name in row:
                    knobs[name] = parse(row[name])
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
                tuple(sorted(knobs.items())),
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
    from .selection import SelectionRequest

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
    protected = _input_files(items, source if source.is_file() else None, masks)
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


def _file_key(path: Path) -> tuple[str, tuple[int, int] | None]:
    """What identifies a file: its resolved path, and its (device, inode) when it exists."""
    resolved = path.resolve()
    try:
        stat = resolved.stat()
    except OSError:
        return str(resolved), None
    return str(resolved), (stat.st_dev, stat.st_ino)


def _input_files(items: Sequence[BatchItem], manifest: Path | None, masks: Path | None) -> dict[Any, Path]:
    """Every file the run reads (each item's image and mask, the manifest, --masks): never to be written."""
    inputs: dict[Any, Path] = {}
    paths = [path for item in items for path in (item.image, item.mask) if path is not None]
    paths += [path for path in (manifest, masks) if path is not None and path.is_file()]
    for path in paths:
        name, inode = _file_key(path)
        inputs[name] = path
        if inode is not None:
            inputs[inode] = path
    return inputs


def _is_protected(path: Path, protected: dict[Any, Path]) -> Path | None:
    """The input file that ``path`` names (by resolved path or inode), if any."""
    name, inode = _file_key(path)
    return protected.get(name) or (protected.get(inode) if inode is not None else None)


def _name_too_long(path: Path) -> str | None:
    """A problem when a name of ``path`` is longer than file systems allow (255 bytes, and the temp suffix)."""
    for part in path.parts:
        limit = 255 - (len(".") + 1 + 12 + len(".tmp") if part == path.name else 0)
        if len(os.fsencode(part)) > limit:
            shown = part if len(part) <= 40 else part[:37] + "..."
            return f"output: the name {shown!r} is too long ({len(os.fsencode(part))} bytes; at most {limit})"
    return None


def _output_problem(item: BatchItem, out_dir: Path, protected: dict[Any, Path]) -> str | None:
    """Why ``item``'s output must not be written: too long a name, outside OUT_DIR (through a symbolic
    link), or an input of the run (any item's image or mask, the manifest)."""
    too_long = _name_too_long(item.output)
    if too_long is not None:
        return too_long
    try:
        escapes = not _inside(item.output, out_dir)
        source = _is_protected(item.output, protected)
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


# --------------------------------------------------------------------------------------------------
# Planning: which items are done, which to (re)do, in which batches


def _upright_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image file after its EXIF orientation, from the header only."""
    with Image.open(path) as opened:
        width, height = opened.size
        orientation = opened.getexif().get(_ORIENTATION, 1)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def output_status(
    item: BatchItem, size: tuple[int, int] | None = None
) -> Literal["valid", "missing", "partial"]:
    """``valid`` if ``item``'s output decodes fully at the input's size, ``missing``, or ``partial``."""
    try:
        if not item.output.is_file():
            return "missing"
    except OSError:  # a name the file system refuses: there is no such output
        return "missing"
    try:
        with Image.open(item.output) as opened:
            opened.load()
            output_size = opened.size
        expected = size if size is not None else _upright_size(item.image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return "partial"
    return "valid" if output_size == expected else "partial"


@dataclass
class ItemResult:
    """One line of the JSONL report."""

    id: str
    status: Status
    image: str
    mask: str | None
    output: str
    seed: int
    reason: str | None = None
    seconds: float | None = None
    batch_size: int | None = None
    rank: int = 0

    @classmethod
    def of(cls, item: BatchItem, status: Status, **fields: Any) -> ItemResult:
        return cls(
            item.id,
            status,
            str(item.image),
            None if item.mask is None else str(item.mask),
            str(item.output),
            item.seed,
            **fields,
        )


@dataclass
class BatchPlan:
    """What a run does: the items to process in batches, and those settled already (skipped or failed)."""

    batches: list[list[BatchItem]] = field(default_factory=list)
    settled: list[ItemResult] = field(default_factory=list)
    total: int = 0

    @property
    def pending(self) -> int:
        return sum(len(batch) for batch in self.batches)


def make_batches(
    items: Sequence[BatchItem],
    sizes: dict[str, tuple[int, int]],
    options: RemovalOptions,
    batch_size: int,
) -> list[list[BatchItem]]:
    """Consecutive runs of up to ``batch_size`` items with the same size and settings, in id order.

    The crop strategy fits one window to all masks of a call, so its items run one by one (a batch-mate's
    mask would change the result).
    """
    groups: dict[tuple, list[BatchItem]] = {}
    for item in items:
        settings = item.settings(options)
        key = (sizes[item.id], tuple(sorted(asdict(settings).items())))
        groups.setdefault(key, []).append(item)
    batches = []
    for (_, settings), members in groups.items():
        size = 1 if dict(settings)["strategy"] == "crop" else batch_size
        batches.extend(list(members[start : start + size]) for start in range(0, len(members), size))
    batches.sort(key=lambda batch: batch[0].id)
    return batches


def make_plan(
    items: Sequence[BatchItem],
    options: RemovalOptions,
    *,
    batch_size: int = 4,
    limit: int | None = None,
    overwrite: bool = False,
    clean: bool = True,
) -> BatchPlan:
    """Decide each item's fate: failed at listing, skipped (valid output), or to run (in batches).

    With ``clean``, partial outputs and stale temporary files of the items to run are deleted.
    """
    chosen = list(items)[:limit] if limit is not None else list(items)
    plan = BatchPlan(total=len(chosen))
    pending: list[BatchItem] = []
    sizes: dict[str, tuple[int, int]] = {}
    for item in chosen:
        if item.error is not None:
            plan.settled.append(ItemResult.of(item, "failed", reason=item.error))
            continue
        try:
            sizes[item.id] = _upright_size(item.image)
            imaging.check_pixels(sizes[item.id], item.settings(options).max_pixels, "image")
            resolution = item.settings(options).resolution
            if resolution is not None:
                imaging.check_resolution(sizes[item.id], resolution)
        except imaging.InputError as error:
            plan.settled.append(ItemResult.of(item, "failed", reason=str(error)))
            continue
        except FileNotFoundError:
            plan.settled.append(
                ItemResult.of(item, "failed", reason=f"image: file not found: {str(item.image)!r}")
            )
            continue
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
            reason = f"image: cannot read an image from {str(item.image)!r}: {' '.join(str(error).split())}"
            plan.settled.append(ItemResult.of(item, "failed", reason=reason))
            continue
        status = "missing" if overwrite else output_status(item, sizes[item.id])
        if clean:  # nobody writes yet: leftovers of an interrupted run are safe to delete
            for leftover in imaging.stale_temporaries(item.output) + (
                [item.output] if status == "partial" else []
            ):
                leftover.unlink(missing_ok=True)
        if status == "valid":
            plan.settled.append(ItemResult.of(item, "skipped", reason="a valid output exists"))
            continue
        pending.append(item)
    plan.batches = make_batches(pending, sizes, options, batch_size)
    return plan


# --------------------------------------------------------------------------------------------------
# Running


def _metadata(path: Path) -> tuple[bytes | None, bytes | None]:
    """``(exif, icc_profile)`` of an image file; the EXIF orientation is reset (pixels are written upright)."""
    with Image.open(path) as opened:
        exif = opened.getexif()
        icc = opened.info.get("icc_profile")
    if _ORIENTATION in exif:
        exif[_ORIENTATION] = 1
    return (exif.tobytes() if len(exif) else None), (icc or None)


def _save(result: Image.Image, item: BatchItem) -> None:
    """Write ``result`` atomically with the input's EXIF and ICC profile, never over an input."""
    exif, icc = _metadata(item.image)
    if item.output.suffix.lower() in (".jpg", ".jpeg"):
        result = result.convert("RGB")  # JPEG has no alpha; converting here keeps the metadata below
    if icc is not None:
        result.info["icc_profile"] = icc
    if exif is not None and item.output.suffix.lower() != ".bmp":
        # Pillow's documented per-image writer options: imaging.save_image passes them through to the writer.
        result.encoderinfo = {"exif": exif}
    protect = [item.image] if item.mask is None else [item.image, item.mask]
    imaging.save_image(result, item.output, protect=protect)


@dataclass
class _Loaded:
    item: BatchItem
    picture: Image.Image
    alpha: Image.Image | None
    mask: np.ndarray


def _load(item: BatchItem, resize_mask: bool, max_pixels: int | None = imaging.DEFAULT_MAX_PIXELS) -> _Loaded:
    picture, alpha = imaging.split_alpha(imaging.load_image(item.image, max_pixels=max_pixels))
    if item.mask is None and item.selection is None:
        raise imaging.InputError("mask", "no mask for this image")
    mask = None
    if item.mask is not None:
        mask = imaging.load_mask(item.mask, size=picture.size, resize=resize_mask, max_pixels=max_pixels)
    if item.selection is not None:
        selected = item.selection.select(picture)
        mask = selected if mask is None else mask | selected
    imaging.validate_mask(mask)
    return _Loaded(item, picture, alpha, mask)


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if isinstance(error, imaging.InputError) else f"{type(error).__name__}: {text}"


class _Remover:
    """Runs batches through the pipeline(s) of one model on one device."""

    def __init__(self, options: RemovalOptions, device: Any, resize_mask: bool, freeu: bool = False) -> None:
        self.options = options
        self.device = device
        self.resize_mask = resize_mask
        self.freeu = freeu

    def pipeline(self, settings: RemovalOptions) -> Any:
        """The (cached) pipeline for ``settings``' model and method."""
        from .api import load_pipeline

        pipe = load_pipeline(
            settings.model,
            method=settings.method,
            device=self.device,
            dtype=settings.dtype,
            config=settings.config,
            freeu=self.freeu,
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def __call__(self, batch: Sequence[_Loaded]) -> list[Image.Image]:
        import torch

        settings = batch[0].item.settings(self.options)
        pipe = self.pipeline(settings)
        knobs = {
            "num_inference_steps": settings.num_inference_steps,
            "strength": settings.strength,
            "removal_guidance_scale": settings.removal_guidance_scale,
            "suppression_scale": settings.suppression_scale,
            "suppression_steps": settings.suppression_steps,
            "mask_dilation": settings.mask_dilation,
            "feather_radius": settings.feather_radius,
            "resolution": settings.resolution,
        }
        kwargs: dict[str, Any] = {name: value for name, value in knobs.items() if value is not None}
        if settings.method == "sip":
            # one generator per item, on the CPU as api.remove does: the item's seed alone fixes its noise
            kwargs["generator"] = [
                torch.Generator(device="cpu").manual_seed(entry.item.seed) for entry in batch
            ]
        output = pipe(
            [entry.picture for entry in batch],
            [entry.mask for entry in batch],
            paste_back=settings.paste_back,
            strategy=settings.strategy,
            **kwargs,
        )
        return [
            imaging.merge_alpha(image, entry.alpha) for image, entry in zip(output.images, batch, strict=False)
        ]


class _Report:
    """Appends one JSON line per item to a file, flushed at once (a crash keeps every finished line)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = path.open("w", encoding="utf-8")
        self.counts = {"done": 0, "skipped": 0, "failed": 0}

    def write(self, result: ItemResult) -> None:
        self.handle.write(json.dumps(asdict(result), ensure_ascii=False) + "\n")
        self.handle.flush()
        self.counts[result.status] += 1

    def close(self) -> None:
        self.handle.close()


def _process(
    batches: Sequence[Sequence[BatchItem]],
    remover: _Remover,
    report: _Report,
    *,
    rank: int,
    progress: Any,
) -> None:
    """Load, remove, save and report every item of ``batches``; one bad item never stops the rest."""
    for batch in batches:
        loaded = []
        for item in batch:
            try:
                loaded.append(_load(item, remover.resize_mask, remover.options.max_pixels))
            except Exception as error:  # noqa: BLE001 -- recorded, and the run goes on
                report.write(ItemResult.of(item, "failed", reason=_reason(error), rank=rank))
                progress.update()
        # a batch that fails as a whole (e.g. out of memory) is retried item by item to isolate the cause
        attempts = [loaded] if len(loaded) <= 1 else [loaded, *([entry] for entry in loaded)]
        remaining = {id(entry) for entry in loaded}
        for attempt in attempts:
            attempt = [entry for entry in attempt if id(entry) in remaining]
            if not attempt:
                continue
            start = time.perf_counter()
            try:
                results = remover(attempt)
            except Exception as error:  # noqa: BLE001
                if len(attempt) == 1:
                    report.write(ItemResult.of(attempt[0].item, "failed", reason=_reason(error), rank=rank))
                    remaining.discard(id(attempt[0]))
                    progress.update()
                continue
            seconds = (time.perf_counter() - start) / len(attempt)
            for entry, result in zip(attempt, results, strict=False):
                try:
                    _save(result, entry.item)
                except Exception as error:  # noqa: BLE001
                    report.write(ItemResult.of(entry.item, "failed", reason=_reason(error), rank=rank))
                else:
                    report.write(
                        ItemResult.of(
                            entry.item, "done", seconds=round(seconds, 4), batch_size=len(attempt), rank=rank
                        )
                    )
                remaining.discard(id(entry))
                progress.update()
            if not remaining:
                break


def _part_path(report: Path, index: int, count: int) -> Path:
    return report.with_name(f".{report.name}.part-{index:05d}-of-{count:05d}")


def read_report(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL report."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _merge_reports(report: Path, count: int) -> None:
    """Write the report from the processes' parts, sorted by id; remove every part (stale ones too)."""
    records = []
    for index in range(count):
        part = _part_path(report, index, count)
        if part.is_file():
            records.extend(read_report(part))
    records.sort(key=lambda record: record["id"])
    temporary = report.with_name(f".{report.name}.merging")
    temporary.write_text(
        "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8"
    )
    os.replace(temporary, report)
    for stale in report.parent.glob(f".{report.name}.part-*"):
        stale.unlink(missing_ok=True)


def check_report_path(
    report: Path,
    items: Sequence[BatchItem],
    *,
    inputs: Sequence[Path] = (),
) -> None:
    """Refuse, before any work, a report path that is an input or an output of the run, or a folder.

    ``inputs`` are files read besides the items' images and masks (the manifest, a ``--masks`` file).
    Nothing is created: the folder must accept new files (:func:`imaging.check_output_path`).
    """
    try:
        is_dir = report.is_dir()
    except OSError as error:
        raise imaging.InputError("report", f"cannot use {str(report)!r}: {' '.join(str(error).split())}") from None
    if is_dir:
        raise imaging.InputError("report", f"{str(report)!r} is a directory, not a file path")
    protected = _input_files(items, None, None)
    for path in inputs:
        if path is not None and path.is_file():
            name, inode = _file_key(path)
            protected[name] = path
            if inode is not None:
                protected[inode] = path
    source = _is_protected(report, protected)
    if source is not None:
        raise imaging.InputError(
            "report", f"{str(report)!r} is the input file {str(source)!r}; an input is never overwritten"
        )
    outputs = {_file_key(item.output)[0]: item for item in items if item.error is None}
    clash = outputs.get(_file_key(report)[0])
    if clash is not None:
        raise imaging.InputError(
            "report", f"{str(report)!r} is the output of {str(clash.image)!r}; choose another path"
        )
    imaging.check_output_path(report, argument="report")


def _distributed_state(device: str | None) -> Any:
    """accelerate's process state; ``cpu=True`` only where no accelerator is present (or the CPU is asked for).

    Under ``torchrun``/``accelerate launch`` this joins the process group; alone it is a single process.
    """
    from accelerate import PartialState

    from .runtime import accelerator_available

    return PartialState(cpu=not accelerator_available() or (device is not None and device.startswith("cpu")))


@dataclass
class BatchSummary:
    """Counts over all processes, and the wall time of the run."""

    total: int
    done: int
    skipped: int
    failed: int
    seconds: float
    processes: int

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def run_batch(
    items: Sequence[BatchItem],
    options: RemovalOptions,
    *,
    report_path: Path,
    batch_size: int = 4,
    limit: int | None = None,
    overwrite: bool = False,
    resize_mask: bool = False,
    progress: bool = True,
    freeu: bool = False,
) -> BatchSummary:
    """Plan on the main process, split the batches between the processes, run, merge the report."""
    from accelerate.utils import broadcast_object_list, gather_object

    start = time.perf_counter()
    state = _distributed_state(options.device)
    rank, count = state.process_index, state.num_processes
    payload: list[Any] = [None]
    if state.is_main_process:
        check_report_path(report_path, items)
        payload = [make_plan(items, options, batch_size=batch_size, limit=limit, overwrite=overwrite)]
    if count > 1:
        payload = broadcast_object_list(payload)
    plan: BatchPlan = payload[0]

    report = _Report(_part_path(report_path, rank, count))
    if state.is_main_process:
        for result in plan.settled:
            report.write(result)
    # a device given by the user wins; otherwise each process takes its own accelerator (cuda:LOCAL_RANK)
    device = options.device if options.device is not None or count == 1 else state.device
    remover = _Remover(options, device, resize_mask, freeu)
    with state.split_between_processes(plan.batches) as mine:
        from tqdm.auto import tqdm

        if mine:
            # Load the model before the first item: a model that cannot load stops the run with one error
            # (instead of failing every item), and per-item timings exclude the loading.
            remover.pipeline(mine[0][0].settings(options))
        total = sum(len(batch) for batch in mine)
        label = f"batch [{rank + 1}/{count}]" if count > 1 else "batch"
        with tqdm(
            total=total,
            desc=label,
            unit="img",
            disable=not progress,
            position=rank,
            leave=True,
            dynamic_ncols=True,
        ) as bar:
            _process(mine, remover, report, rank=rank, progress=bar)
    report.close()

    counts = [dict(report.counts)]
    if count > 1:
        state.wait_for_everyone()
        counts = gather_object(counts)
    if state.is_main_process:
        _merge_reports(report_path, count)
    totals = {key: sum(part[key] for part in counts) for key in ("done", "skipped", "failed")}
    return BatchSummary(
        plan.total, totals["done"], totals["skipped"], totals["failed"], time.perf_counter() - start, count
    )


def plan_dry_run(
    items: Sequence[BatchItem],
    options: RemovalOptions,
    *,
    batch_size: int = 4,
    limit: int | None = None,
    overwrite: bool = False,
    resize_mask: bool = False,
) -> tuple[BatchPlan, list[ItemResult]]:
    """What a run would do, without a model and without writing or deleting anything.

    Every pending image and mask is read and checked, so bad items show up now. Returns the plan and the
    items that would fail.
    """
    plan = make_plan(items, options, batch_size=batch_size, limit=limit, overwrite=overwrite, clean=False)
    failing = []
    for batch in plan.batches:
        for item in batch:
            try:
                _load(item, resize_mask, options.max_pixels)
            except Exception as error:  # noqa: BLE001
                failing.append(ItemResult.of(item, "failed", reason=_reason(error)))
    return plan, failing


# --------------------------------------------------------------------------------------------------
# Command line

_PATH = click.Path(path_type=Path)


@main.command("batch")
@click.argument("source", type=_PATH)
@click.option(
    "-o",
    "--output-dir",
    type=_PATH,
    required=True,
    help="Folder for the results; each keeps its input's relative path and format.",
)
@click.option(
    "--masks",
    type=_PATH,
    default=None,
    metavar="FILE|DIR",
    help="One mask FILE for every image, or a DIR of masks mirroring SOURCE's folders "
    "(default: masks lie beside their images).",
)
@click.option(
    "--mask-pattern",
    default=None,
    metavar="PATTERN",
    help="Name of an image's mask; {stem}, {name} and {suffix} are the image's, * and ? glob. "
    "Default: '{stem}_mask.*' beside the images, '{stem}.*' in a --masks folder.",
)
@removal_options
@click.option(
    "--fixed-seed",
    is_flag=True,
    help="Give every item the seed --seed itself (the paper's protocol), instead of a hash of the "
    "item's output path and --seed.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 256),
    default=4,
    show_default=True,
    help="Items per pipeline call (items of one size and settings run together).",
)
@click.option(
    "--limit", type=click.IntRange(min=0), default=None, help="Only the first N items (in output-path order)."
)
@click.option(
    "--dry-run", is_flag=True, help="Check every input and print what would run; no model, nothing written."
)
@click.option("--overwrite", is_flag=True, help="Redo items whose output already exists.")
@click.option(
    "--resize-mask", is_flag=True, help="Resize masks whose size differs from their image's; else fail."
)
@click.option(
    "--freeu", is_flag=True, help="Enable FreeU with SD 2.1's factors (as for the paper's SD 2.1 numbers)."
)
@click.option(
    "--report",
    "report_path",
    type=_PATH,
    default=None,
    help="JSONL report, one line per item. Default: OUTPUT_DIR/batch-report.jsonl.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def batch_command(
    source: Path,
    output_dir: Path,
    masks: Path | None,
    mask_pattern: str | None,
    fixed_seed: bool,
    batch_size: int,
    limit: int | None,
    dry_run: bool,
    overwrite: bool,
    resize_mask: bool,
    freeu: bool,
    report_path: Path | None,
    quiet: bool,
    **settings: Any,
) -> None:
    """Remove objects from every image of SOURCE (a folder, or a CSV/JSONL manifest) into OUTPUT_DIR.

    Rerunning the same command resumes: valid outputs are skipped, partial ones redone. A bad item is
    recorded in the report with its reason and the run goes on; the exit code is 1 if any item failed.
    Launch it with `accelerate launch` or `torchrun` to split the items between processes (GPUs).
    """
    options = RemovalOptions(**settings, progress=False)
    report_path = report_path if report_path is not None else output_dir / "batch-report.jsonl"
    with _input_errors():
        if output_dir.exists() and not output_dir.is_dir():
            raise imaging.InputError("output-dir", f"{str(output_dir)!r} is a file, not a folder")
        if source.is_dir() and _inside(source, output_dir):
            raise imaging.InputError(
                "output-dir", f"{str(output_dir)!r} contains SOURCE; write the results elsewhere"
            )
        items = list_items(
            source,
            output_dir,
            masks=masks,
            mask_pattern=mask_pattern,
            base_seed=options.seed,
            fixed_seed=fixed_seed,
        )
        read_too = [path for path in (source if source.is_file() else None, masks) if path is not None]
        check_report_path(report_path, items, inputs=read_too)
        imaging.check_output_path(output_dir / "batch-report.jsonl", argument="output-dir", needed_bytes=2**20)
        if dry_run:
            plan, failing = plan_dry_run(
                items,
                options,
                batch_size=batch_size,
                limit=limit,
                overwrite=overwrite,
                resize_mask=resize_mask,
            )
            _print_dry_run(plan, failing)
            click.get_current_context().exit(
                1 if failing or any(r.status == "failed" for r in plan.settled) else 0
            )
        with _quiet_third_party(quiet):
            _check_device(options.device)
            summary = run_batch(
                items,
                options,
                report_path=report_path,
                batch_size=batch_size,
                limit=limit,
                overwrite=overwrite,
                resize_mask=resize_mask,
                progress=not quiet,
                freeu=freeu,
            )
    rate = summary.done / summary.seconds if summary.seconds > 0 else math.inf
    if _is_main_process():
        click.echo(
            f"{summary.total} items: {summary.done} done, {summary.skipped} skipped, {summary.failed} "
            f"failed in {summary.seconds:.1f} s ({rate:.2f} items/s, {summary.processes} process"
            f"{'es' if summary.processes > 1 else ''}); report: {report_path}"
        )
    click.get_current_context().exit(summary.exit_code)


def _is_main_process() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process


def _print_dry_run(plan: BatchPlan, failing: Iterable[ItemResult]) -> None:
    failing = list(failing)
    bad = {result.id for result in failing}
    for result in plan.settled:
        click.echo(f"{'skip' if result.status == 'skipped' else 'FAIL'}  {result.id}  ({result.reason})")
    for batch in plan.batches:
        for item in batch:
            if item.id not in bad:
                click.echo(
                    f"run   {item.id}  image={item.image} mask={item.mask} seed={item.seed} "
                    f"batch={len(batch)}"
                )
    for result in failing:
        click.echo(f"FAIL  {result.id}  ({result.reason})")
    skipped = sum(result.status == "skipped" for result in plan.settled)
    failed = len(failing) + sum(result.status == "failed" for result in plan.settled)
    click.echo(
        f"dry run: {plan.total} items: {plan.pending - len(failing)} to run in {len(plan.batches)} "
        f"batches, {skipped} skipped, {failed} would fail",
        err=False,
    )
    sys.stdout.flush()
