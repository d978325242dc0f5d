"""Planning a batch run: which items are done (resumption), which to (re)do, and in which batches.

An item whose output exists and opens fully at the input's size is *skipped*; a truncated output or a
stale temporary file is removed and the item redone. Pending items are cut into batches of up to
``batch_size`` items that share a size and settings, in id order, before they are split between processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from .. import imaging
from ..settings import RemovalOptions
from .sources import BatchItem, input_files

Status = Literal["done", "skipped", "failed"]

EXIF_ORIENTATION = 0x0112  # EXIF tag; the pixels are written upright, so it is reset to 1


def upright_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image file after its EXIF orientation, from the header only."""
    with Image.open(path) as opened:
        width, height = opened.size
        orientation = opened.getexif().get(EXIF_ORIENTATION, 1)
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
        expected = size if size is not None else upright_size(item.image)
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
    groups: dict[tuple[tuple[int, int], RemovalOptions], list[BatchItem]] = {}
    for item in items:
        groups.setdefault((sizes[item.id], item.settings(options)), []).append(item)
    batches: list[list[BatchItem]] = []
    for (_, settings), members in groups.items():
        size = 1 if settings.strategy == "crop" else batch_size
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
    inputs: Sequence[Path | None] = (),
) -> BatchPlan:
    """Decide each item's fate: failed at listing or planning, skipped (valid output), or to run (in batches).

    Every check that needs no model is made here, before one loads: the item's settings (DIP's sampler, at
    least one denoising step), its image's size and resolution.

    With ``clean``, partial outputs and stale temporary files of the items to run are deleted, but never a
    file the run reads: any item's image or mask, or one of ``inputs`` (the manifest, a ``--masks`` file),
    by path, link or inode.
    """
    protected = input_files(items, inputs) if clean else None
    chosen = list(items)[:limit] if limit is not None else list(items)
    plan = BatchPlan(total=len(chosen))
    pending: list[BatchItem] = []
    sizes: dict[str, tuple[int, int]] = {}
    for item in chosen:
        if item.error is not None:
            plan.settled.append(ItemResult.of(item, "failed", reason=item.error))
            continue
        try:
            # the item's settings, checked as the pipeline would check them after loading the model
            settings = item.settings(options)
        except ValueError as error:
            plan.settled.append(ItemResult.of(item, "failed", reason=" ".join(str(error).split())))
            continue
        try:
            sizes[item.id] = upright_size(item.image)
            imaging.check_pixels(sizes[item.id], settings.max_pixels, "image")
            resolution = settings.get("resolution")
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
        if protected is not None:  # nobody writes yet: leftovers of an interrupted run are ours to delete
            leftovers = imaging.stale_temporaries(item.output, protect=protected)
            if status == "partial" and item.output not in protected:
                leftovers.append(item.output)
            for leftover in leftovers:
                leftover.unlink(missing_ok=True)
        if status == "valid":
            plan.settled.append(ItemResult.of(item, "skipped", reason="a valid output exists"))
            continue
        pending.append(item)
    plan.batches = make_batches(pending, sizes, options, batch_size)
    return plan
