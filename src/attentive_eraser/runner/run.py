"""Running a batch plan: loading, removal through the pipelines, atomic saving, and distribution.

:func:`run_batch` plans on the main process, broadcasts the plan, splits the batches between the
processes (``accelerate``'s ``PartialState.split_between_processes``; batches are formed before the split,
so every item meets the same batch-mates and gets the same result whatever the number of processes), runs
them, and merges the processes' report parts. No click; torch and accelerate are imported when a run starts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image

from .. import imaging
from ..imaging.save import ProtectedFiles
from ..removal import PreparedRemoval, RemovalRequest, prepare, run
from ..settings import RemovalOptions
from .lock import BatchLock
from .plan import EXIF_ORIENTATION, BatchPlan, ItemResult, make_plan
from .report import ReportWriter, check_report_path, check_side_files, merge_reports, part_path
from .sources import BatchItem, input_files


def _metadata(path: Path) -> tuple[bytes | None, bytes | None]:
    """``(exif, icc_profile)`` of an image file; EXIF orientation reset (the pixels are written upright)."""
    with Image.open(path) as opened:
        exif = opened.getexif()
        icc = opened.info.get("icc_profile")
    if EXIF_ORIENTATION in exif:
        exif[EXIF_ORIENTATION] = 1
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
    prepared: PreparedRemoval


def _load(item: BatchItem, options: RemovalOptions, resize_mask: bool, device: Any = None) -> _Loaded:
    """The item prepared as every surface prepares a removal (mask, selection or alpha; every check)."""
    settings = replace(item.settings(options), seed=item.seed)  # the item's own seed fixes its noise
    request = RemovalRequest(item.image, item.mask, item.selection, settings, resize_mask=resize_mask)
    return _Loaded(item, prepare(request, device=device))


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if isinstance(error, imaging.InputError) else f"{type(error).__name__}: {text}"


class Remover:
    """Runs batches through the pipeline(s) of one model on one device."""

    def __init__(self, options: RemovalOptions, device: Any, resize_mask: bool, freeu: bool = False) -> None:
        self.options = options
        self.device = device
        self.resize_mask = resize_mask
        self.freeu = freeu

    def pipeline(self, settings: RemovalOptions) -> Any:
        """The (cached) pipeline for ``settings``' model and method."""
        from ..api import load_pipeline

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
        pipe = self.pipeline(batch[0].item.settings(self.options))
        results = run(pipe, [entry.prepared for entry in batch])
        return [images[0] for images in results]


def _process(
    batches: Sequence[Sequence[BatchItem]],
    remover: Remover,
    report: ReportWriter,
    *,
    rank: int,
    progress: Any,
) -> None:
    """Load, remove, save and report every item of ``batches``; one bad item never stops the rest."""
    for batch in batches:
        loaded = []
        for item in batch:
            try:
                loaded.append(_load(item, remover.options, remover.resize_mask, remover.device))
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


def _distributed_state(device: str | None) -> Any:
    """accelerate's process state; ``cpu=True`` only without an accelerator (or when the CPU is asked for).

    Under ``torchrun``/``accelerate launch`` this joins the process group; alone it is a single process.
    """
    from accelerate import PartialState

    from ..runtime import accelerator_available

    return PartialState(cpu=not accelerator_available() or (device is not None and device.startswith("cpu")))


def is_main_process() -> bool:
    """True in a single process, and in the main one of a distributed run."""
    from accelerate import PartialState

    return bool(PartialState().is_main_process)


def _missing_folders(folders: Sequence[Path]) -> list[Path]:
    """The folders of ``folders`` (and their parents) that do not exist yet, deepest first: what a run
    creates, and removes again if they are still empty when it stops early."""
    missing: set[Path] = set()
    for folder in folders:
        path = folder.absolute()
        while not path.exists() and path.parent != path:
            missing.add(path)
            path = path.parent
    return sorted(missing, key=lambda path: len(path.parts), reverse=True)


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
    inputs: Sequence[Path | None] = (),
    out_dir: Path | None = None,
) -> BatchSummary:
    """Plan on the main process, split the batches between the processes, run, merge the report.

    ``inputs`` are files read besides the items' images and masks (the manifest, a ``--masks`` file): like
    them, never written or deleted by the run. The main process holds a lock (:mod:`.lock`) on ``out_dir``
    and the report's folder from planning to the merged report: a second run there is refused.
    """
    from accelerate.utils import broadcast_object_list

    start = time.perf_counter()
    state = _distributed_state(options.device)
    count = state.num_processes
    protected: ProtectedFiles | None = None
    lock: BatchLock | None = None
    payload: list[Any] = [None]
    created: list[Path] = []
    finished = False
    try:
        if state.is_main_process:
            try:
                protected = input_files(items, inputs)
                check_report_path(report_path, items, inputs=[path for path in inputs if path is not None])
                check_side_files(report_path, count, protected)
                folders = [] if out_dir is None else [(out_dir, "output-dir")]
                created = _missing_folders([folder for folder, _ in folders] + [report_path.parent])
                lock = BatchLock([*folders, (report_path.parent, "report")], protected)
                payload = [
                    make_plan(
                        items, options, batch_size=batch_size, limit=limit, overwrite=overwrite, inputs=inputs
                    )
                ]
            except imaging.InputError as error:
                payload = [error]  # every process raises it: none waits for a plan that never comes
        if count > 1:
            payload = broadcast_object_list(payload)
        if isinstance(payload[0], imaging.InputError):
            raise payload[0]
        totals = _run_plan(
            payload[0], options, state, report_path, resize_mask=resize_mask, progress=progress, freeu=freeu
        )
        if state.is_main_process:
            merge_reports(report_path, count, protect=protected)
        finished = True
    finally:
        if lock is not None:
            lock.release()
        if not finished:
            # A run stopped before any work (a model that cannot load) leaves no empty folder behind.
            for folder in created:
                try:
                    folder.rmdir()  # only an empty folder: whatever the run did write stays
                except OSError:
                    pass
    return BatchSummary(
        payload[0].total,
        totals["done"],
        totals["skipped"],
        totals["failed"],
        time.perf_counter() - start,
        count,
    )


def _run_plan(
    plan: BatchPlan,
    options: RemovalOptions,
    state: Any,
    report_path: Path,
    *,
    resize_mask: bool,
    progress: bool,
    freeu: bool,
) -> dict[str, int]:
    """Run this process's share of ``plan`` into its report part; the counts over all processes."""
    from accelerate.utils import gather_object

    rank, count = state.process_index, state.num_processes
    # a device given by the user wins; otherwise each process takes its own accelerator (cuda:LOCAL_RANK)
    device = options.device if options.device is not None or count == 1 else state.device
    remover = Remover(options, device, resize_mask, freeu)
    with state.split_between_processes(plan.batches) as mine:
        from tqdm.auto import tqdm

        if mine:
            # Load the model before the first item and before the report part is opened: a model that
            # cannot load stops the run with one error (instead of failing every item) and leaves no part
            # behind, and per-item timings exclude the loading.
            remover.pipeline(mine[0][0].settings(options))
        report = ReportWriter(part_path(report_path, rank, count))
        try:
            if state.is_main_process:
                for result in plan.settled:
                    report.write(result)
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
        finally:
            report.close()

    counts = [dict(report.counts)]
    if count > 1:
        state.wait_for_everyone()
        counts = gather_object(counts)
    return {key: sum(part[key] for part in counts) for key in ("done", "skipped", "failed")}


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
                _load(item, options, resize_mask)
            except Exception as error:  # noqa: BLE001
                failing.append(ItemResult.of(item, "failed", reason=_reason(error)))
    return plan, failing
