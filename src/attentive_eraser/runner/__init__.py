"""The batch engine: removal over a folder or manifest, resumable and distributed (no click, torch on use).

How a run is organised, so that it survives crashes and scales to many processes:

1. **List** (:mod:`.sources`): the items of SOURCE, sorted by id (the output path relative to OUT_DIR);
   an item whose output would overwrite an input, escape OUT_DIR or repeat another's fails.
2. **Plan** (:mod:`.plan`, the main process only, holding the folder's lock, :mod:`.lock`): cut to
   ``limit``; every check that needs no model is made (settings, sizes); an item whose output already
   exists and opens at the right size is *skipped*, a truncated output or a stale temporary file is removed
   (never a file the run reads) and the item redone. The pending items are cut into batches that share a
   size and settings.
3. **Run** (:mod:`.run`): the plan is broadcast and the batches split between the processes; each writes
   its outputs atomically (``imaging.save_image``) and appends one JSON line per item to its own report
   part (:mod:`.report`), flushed at once: a crash loses only the batch in flight.
4. **Merge**: after a barrier, the main process merges the parts into one JSONL report sorted by id.

Each item's seed is a hash of its id and the base seed (or the base seed itself with ``fixed_seed``, or
the manifest's ``seed``): the same item gets the same noise whatever the order, the limit or the sharding.
Settings come as one :class:`attentive_eraser.settings.RemovalOptions`; a manifest row overrides its knobs.
"""

from __future__ import annotations

from .plan import BatchPlan, ItemResult, make_batches, make_plan, output_status
from .report import check_report_path, read_report
from .run import BatchSummary, is_main_process, plan_dry_run, run_batch
from .sources import (
    IMAGE_SUFFIXES,
    MANIFEST_COLUMNS,
    SELECTION_COLUMNS,
    SETTING_COLUMNS,
    BatchItem,
    item_seed,
    items_from_folder,
    items_from_manifest,
    list_items,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "MANIFEST_COLUMNS",
    "SELECTION_COLUMNS",
    "SETTING_COLUMNS",
    "BatchItem",
    "BatchPlan",
    "BatchSummary",
    "ItemResult",
    "check_report_path",
    "is_main_process",
    "item_seed",
    "items_from_folder",
    "items_from_manifest",
    "list_items",
    "make_batches",
    "make_plan",
    "output_status",
    "plan_dry_run",
    "read_report",
    "run_batch",
]
