"""The JSONL report of a batch run: one line per item, written by each process to its own part, merged.

Each process appends to ``.<report>.part-<rank>-of-<count>``, flushing every line (a crash loses only
the batch in flight); after the run the main process merges the parts into one report sorted by id.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import imaging
from ..imaging.save import ProtectedFiles
from .plan import ItemResult
from .sources import BatchItem, file_key, input_files, protected_source


class ReportWriter:
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


def part_path(report: Path, index: int, count: int) -> Path:
    """Where process ``index`` of ``count`` writes its part of ``report``."""
    return report.with_name(f".{report.name}.part-{index:05d}-of-{count:05d}")


def read_report(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL report."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def merging_path(report: Path) -> Path:
    """The temporary file the merged report is written to before it replaces ``report``."""
    return report.with_name(f".{report.name}.merging")


def side_files(report: Path, count: int) -> list[Path]:
    """Every file a run of ``count`` processes writes besides ``report``: the parts, the merge's temporary."""
    return [*(part_path(report, index, count) for index in range(count)), merging_path(report)]


def merge_reports(report: Path, count: int, *, protect: ProtectedFiles | None = None) -> None:
    """Write the report from the processes' parts, sorted by id; remove every part (stale ones too).

    A file named like a stale part that is one of ``protect`` (the run's inputs) is left alone.
    """
    records = []
    for index in range(count):
        part = part_path(report, index, count)
        if part.is_file():
            records.extend(read_report(part))
    records.sort(key=lambda record: record["id"])
    temporary = merging_path(report)
    temporary.write_text(
        "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8"
    )
    os.replace(temporary, report)
    for stale in report.parent.glob(f".{report.name}.part-*"):
        if protect is None or stale not in protect:
            stale.unlink(missing_ok=True)


def check_side_files(report: Path, count: int, protected: ProtectedFiles) -> None:
    """Refuse a report whose parts or merge temporary would be written over an input of the run."""
    for path in side_files(report, count):
        source = protected.find(path)
        if source is not None:
            raise imaging.InputError(
                "report",
                f"the run would write {str(path)!r} beside the report, and it is the input file "
                f"{str(source)!r}; an input is never overwritten: choose another --report",
            )


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
        raise imaging.InputError(
            "report", f"cannot use {str(report)!r}: {' '.join(str(error).split())}"
        ) from None
    if is_dir:
        raise imaging.InputError("report", f"{str(report)!r} is a directory, not a file path")
    source = protected_source(report, input_files(items, inputs))
    if source is not None:
        raise imaging.InputError(
            "report", f"{str(report)!r} is the input file {str(source)!r}; an input is never overwritten"
        )
    outputs = {file_key(item.output)[0]: item for item in items if item.error is None}
    clash = outputs.get(file_key(report)[0])
    if clash is not None:
        raise imaging.InputError(
            "report", f"{str(report)!r} is the output of {str(clash.image)!r}; choose another path"
        )
    imaging.check_output_path(report, argument="report")
